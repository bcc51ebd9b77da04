"""Ctrl-C is raised only where it is safe (issue 23, point 5): never inside a database write,
where it broke the connection, printed tracebacks and left a trial RUNNING."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import traceback
from pathlib import Path

import optuna
import pytest

from sweep.store import interrupts

#: Where an interrupt must never land.
_UNSAFE = ("/sqlalchemy/", "/optuna/")


def _our_step() -> None:
    """Our code between two writes: where the interrupt may land."""
    sum(range(200))


@pytest.fixture
def usr1_interrupts():
    previous = signal.signal(signal.SIGUSR1, interrupts.interrupt)
    yield
    signal.signal(signal.SIGUSR1, previous)


def test_an_interrupt_never_lands_inside_a_database_write(
    tmp_path: Path, usr1_interrupts: None
) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'i.db'}")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    rng = random.Random(0)
    landed = []
    try:
        for n in range(25):
            # Most of the loop's time is spent inside the storage, so an interrupt raised at
            # once lands there nearly every time.
            with pytest.raises(KeyboardInterrupt) as caught:
                # Started inside the block: on a loaded machine the timer may fire before
                # start() returns, and that interrupt is one of the round's too.
                threading.Timer(rng.uniform(0.0, 0.02), os.kill,
                                (os.getpid(), signal.SIGUSR1)).start()  # fmt: skip
                # An interrupt lands within ~0.02 s; a bounded loop fails the test (no
                # KeyboardInterrupt) instead of running for minutes if none ever lands.
                for i in range(5_000):
                    trial.set_user_attr("k", f"{n}-{i}")
                    _our_step()
            frames = traceback.extract_tb(caught.value.__traceback__)
            landed.append(
                [
                    f.filename
                    for f in frames
                    if not f.filename.endswith("sweep/store/interrupts.py")
                ][-1]
            )
    finally:
        storage.engine.dispose()
    inside = [p for p in landed if any(u in p for u in _UNSAFE)]
    assert not inside, f"{len(inside)} of {len(landed)} interrupts landed in {inside[:3]}"


def test_a_finaliser_is_never_interrupted() -> None:
    class Finalised:
        def __del__(self) -> None:
            assert not interrupts.safe(sys._getframe())

    Finalised()


def test_our_own_code_is_interrupted_at_once() -> None:
    assert interrupts.safe(sys._getframe())


def test_the_project_root_is_the_folder_above_sweep() -> None:
    # Where "our code" starts: a root one level too deep once made model/ and tests/ foreign,
    # so Ctrl-C during training was deferred for ever.
    root = Path(interrupts.__file__).resolve().parents[2]
    assert interrupts._OURS == str(root) + os.sep
    assert (root / "study.py").exists() and (root / "model").is_dir()
