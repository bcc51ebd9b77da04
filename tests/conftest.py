"""Shared fixtures: a tiny real study, made by running study.py the way a person would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_TRIALS = 3


@dataclass(frozen=True)
class TinyStudy:
    folder: Path
    """Where study.py ran; the database and checkpoints/ are here."""
    name: str

    @property
    def db(self) -> Path:
        return self.folder / "s.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def load(self) -> optuna.Study:
        return optuna.load_study(study_name=self.name, storage=self.url)


def study_py(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python study.py ARGS`` in ``cwd``; output is captured as text."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "study.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"study.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Torch computes on one thread in the tests, as in every sweep worker (sweep.runner).
    Its default, a thread per core, made the reference engine's 4,000-step epoch in
    test_fast_engine take 58 s instead of 7 on a 2-core machine with the other core busy; in
    the whole suite it was fast only because test_clock_polish's fixture, which runs first,
    sets one thread for the rest of the session."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def _tiny_study_made_once(tmp_path_factory: pytest.TempPathFactory) -> TinyStudy:
    """Three trials of two epochs on 200 samples per block (a few seconds). It runs with a
    relative storage URL in its own folder, as a person would, so the checkpoint paths stored
    on the trials are relative to that folder, not to where the tests run."""
    folder = tmp_path_factory.mktemp("tiny-original")
    study_py(
        "--trials",
        str(TINY_TRIALS),
        "--epochs",
        "2",
        "--samples",
        "200",
        "--workers",
        "1",
        "--storage",
        "sqlite:///s.db",
        "--study-name",
        "tiny",
        "--quiet",
        cwd=folder,
    )
    return TinyStudy(folder, "tiny")


@pytest.fixture(scope="module")
def tiny_study(
    _tiny_study_made_once: TinyStudy, tmp_path_factory: pytest.TempPathFactory
) -> TinyStudy:
    """The tiny study, a copy of its own for each test module (some add trials, attach
    artifacts or write reports into its folder). The sweep runs once per session: it stores
    only paths relative to its folder (database, checkpoints, artifacts), so a copy of the
    folder is the same study, as if the sweep had run there."""
    folder = tmp_path_factory.mktemp("tiny") / "run"
    shutil.copytree(_tiny_study_made_once.folder, folder)
    return TinyStudy(folder, "tiny")


#: The figures of ``study.py report --html``, in page order (their div ids).
REPORT_FIGURES = ("fig-sweep", "fig-curves", "fig-criteria", "fig-focus", "fig-panels",
                  "fig-per-freq", "fig-error-spectrum")  # fmt: skip
