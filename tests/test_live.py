"""The sweep on a terminal, through a pseudo-terminal as a person sees it: the live view
redrawn in place (a few lines scroll, not one per epoch), the answer last; with --plain, the
plain lines. (Piped output is checked by test_cli's end-to-end run.)"""

from __future__ import annotations

import os
import pty
import re
import sys
from pathlib import Path

from cli_runs import STUDY_PY, tiny_args

#: Cursor up n lines, as rich's live display moves back over its own lines to redraw them.
CURSOR_UP = re.compile(rb"\x1b\[(\d*)A")
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(args: list[str], cwd: Path) -> tuple[int, bytes]:
    """``python study.py ARGS`` with a pseudo-terminal as its stdout and stderr: exit code and
    everything it wrote, escape codes included."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes study.py
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, STUDY_PY, *args], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def scrolled(raw: bytes) -> int:
    """Lines the output moved the screen down: newlines less the lines the cursor went back
    up to redraw."""
    ups = sum(int(n or 1) for n in CURSOR_UP.findall(raw))
    return raw.count(b"\n") - ups


def test_on_a_terminal_the_sweep_draws_its_progress_in_place_and_ends_with_the_answer(
    tmp_path: Path,
) -> None:
    args = tiny_args("sqlite:///s.db", "live", trials=4, epochs=5, samples=200, workers=2)
    rc, raw = on_a_terminal(args, tmp_path)
    text = ESCAPES.sub("", raw.decode(errors="replace")).replace("\r", "")
    assert rc == 0, text
    assert "Traceback" not in text
    # The study line, with its count, best so far and times; no line per epoch.
    assert re.search(r"4/4 finished, \d+ pruned  best #\d+ val MSE [\d.]+ \(\w+\)  "
                     r"elapsed \d+:\d\d  ETA \d+:\d\d", text), text  # fmt: skip
    assert "epoch 1/5" not in text
    # Each trial's end scrolls above it, and the answer: plain lines would be 4 x 5 more.
    assert text.count(" done (") == 4
    assert scrolled(raw) <= 4 + 18, (scrolled(raw), text)
    assert text.rstrip().splitlines()[-1].startswith("  python study.py eval ")
    assert "Best: trial " in text


def test_plain_on_a_terminal_prints_a_line_per_epoch(tmp_path: Path) -> None:
    args = tiny_args("sqlite:///s.db", "plain", trials=1, epochs=2, samples=200)
    rc, raw = on_a_terminal([*args, "--plain"], tmp_path)
    text = raw.decode(errors="replace")
    assert rc == 0, text
    assert "trial 0 epoch 1/2" in text and "trial 0 epoch 2/2" in text
    assert not CURSOR_UP.search(raw) and "finished, " not in text
