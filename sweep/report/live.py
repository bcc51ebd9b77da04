"""The live view of a sweep on a terminal: ``sweep.report.progress`` drawn with rich, redrawn
in place once a second, with the run's own messages (a trial done, a warning) printed above it.
On anything but a terminal, or with ``--plain``, the run prints its plain lines instead."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import optuna
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from sweep.report.progress import Progress, progress, study_text, trial_text

#: Seconds between redraws (each reads the study once: a few ms on a 20-trial study).
REFRESH_S = 1.0


def use_live_view(is_terminal: bool, plain: bool, term: str | None) -> bool:
    """Whether to draw the live view: only on a terminal that can move its cursor, and not
    when the person asked for plain lines."""
    return is_terminal and not plain and (term or "dumb") != "dumb"


def render(p: Progress) -> Group:
    lines = [Text(trial_text(t), no_wrap=True, overflow="ellipsis") for t in p.running]
    lines.append(Text(study_text(p.study), style="bold", no_wrap=True, overflow="ellipsis"))
    return Group(*lines)


class LiveView:
    """Draws the sweep's progress until ``stop``; ``log`` prints a message above it."""

    def __init__(self, target: int, workers: int, console: Console | None = None) -> None:
        self._target, self._workers = target, workers
        self._console = console or Console(highlight=False)
        self._live = Live(console=self._console, auto_refresh=False, transient=False,
                          redirect_stdout=True, redirect_stderr=True)  # fmt: skip
        self._started = datetime.now()
        self._study: optuna.Study | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)

    def start(self) -> None:
        self._live.start(refresh=True)
        self._thread.start()

    def watch(self, study: optuna.Study) -> None:
        """The study to read from, once the sweep has opened it."""
        self._study = study

    def log(self, message: str) -> None:
        # markup off: messages carry brackets ("[worker 0]", "[at the predict-zero floor]").
        self._console.print(message, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5 * REFRESH_S)
        self.refresh()  # the last state stays on the screen, above the answer
        self._live.stop()

    def refresh(self) -> None:
        study = self._study
        if study is None:
            return
        try:
            trials = study.get_trials(deepcopy=False)
        except SQLAlchemyError:  # a busy database: keep the last frame; the sweep goes on
            return
        now = datetime.now()
        self._live.update(render(progress(trials, self._target, self._workers, self._started,
                                          now)), refresh=True)  # fmt: skip

    def _run(self) -> None:
        while not self._done.wait(REFRESH_S):
            self.refresh()


def logger(view: LiveView | None) -> Callable[[str], None]:
    """Where the run's messages go: above the live view, or straight to stdout."""
    if view is not None:
        return view.log
    return lambda m: print(m, flush=True)
