"""Where a measurement ran: the commit (with a mark when the tree had changes) and the CPU, for
the records bench scripts write."""

from __future__ import annotations

import json
import multiprocessing
import platform
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path


def commit() -> str:
    """HEAD's short hash, with ``+dirty`` when tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


def machine() -> str:
    return f"{platform.processor() or platform.machine()} {cpu_name()}"


def pool_to_jsonl(fn: Callable[..., dict], jobs_in: Iterable, jobs: int, out: Path,
                  show: Callable[[dict], str]) -> None:  # fmt: skip
    """``fn`` over ``jobs_in`` in ``jobs`` spawned processes (one thread each is the caller's
    business); each result, with the commit, machine and job count, appended to ``out`` as one
    JSON line as it arrives (a stopped run keeps what it finished), and ``show(result)``
    printed."""
    head, cpu = commit(), machine()
    out.parent.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for r in pool.imap_unordered(fn, list(jobs_in)):
            r.update(commit=head, machine=cpu, jobs=jobs)
            with out.open("a") as f:
                f.write(json.dumps(r) + "\n")
            print(show(r), flush=True)
