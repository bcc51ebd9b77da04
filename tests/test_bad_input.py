"""Bad input is refused with one line and exit code 2, and nothing is created or changed;
damaged checkpoints and non-finite losses never stop the sweep."""

from __future__ import annotations

import math
import sqlite3
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
from cli_runs import assert_curves_continuous, close, run_study, sha256, tiny_args, trials
from optuna.trial import TrialState

import study as study_py
from model.l1.checkpoint import save_state
from model.l1.training import Training
from sweep.admission import SurplusTrial
from sweep.delivery import Sets
from sweep.identity import open_study_and_storage
from sweep.objective import Objective
from sweep.pruner import DivergencePruner
from sweep.records import STOP_INTERRUPTED
from sweep.settings import SweepConfig
from sweep.store.storage import TIMEOUT_ENV

optuna.logging.set_verbosity(optuna.logging.WARNING)
TINY = dict(trials=1, epochs=2, samples=100, workers=1)


def _refused(capfd: pytest.CaptureFixture[str], argv: list[str], *words: str) -> str:
    """Run ``study.py ARGV`` in this process: exit code 2 and one line naming the problem."""
    try:
        rc = study_py.main(argv)
    except SystemExit as exc:  # argparse's own errors exit
        rc = exc.code
    assert rc == 2
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in out + err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--lr-min", "3e-4", "--lr-max", "3e-5"], "--lr-min"),
        (["--lr-min", "1e-4", "--lr-max", "1e-4"], "--lr-min"),
        (["--lr-min", "0"], "--lr-min"),
        (["--lr-min=-1e-4"], "--lr-min"),  # argparse reads "-1e-4" alone as an option
        (["--lr-max", "1.5"], "--lr-max"),
        (["--trials", "0"], "--trials"),
        (["--trials", "-3"], "--trials"),
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "-1"], "--epochs"),
        (["--samples", "0"], "--samples"),
        (["--samples", "-5"], "--samples"),
        (["--clip", "0"], "--clip"),
        (["--hidden-size", "0"], "--hidden-size"),
        (["--plateau-factor", "2"], "--plateau-factor"),
        (["--plateau-patience", "-1"], "--plateau-patience"),
        (["--early-stopping-patience", "0"], "--early-stopping-patience"),
        (["--seed", "-1"], "--seed"),
        (["--test-seed", "-2"], "--test-seed"),
        (["--method", "clocks"], "--method"),
        (["--updates-per-epoch", "0"], "--updates-per-epoch"),
        (["--epochs", "5", "--tune-epochs", "5"], "--tune-epochs"),
        (["--tune-epochs", "-1"], "--tune-epochs"),
        (["--polish-evaluations=-100"], "--polish-evaluations"),
        (["--method", "clock", "--polish-evaluations", "150"], "--polish-evaluations"),
        (["--polish-target", "1.5"], "--polish-target"),
        (["--polish-target", "nan"], "--polish-target"),
        (
            ["--method", "clock", "--polish-goal-after", "150"],
            "--polish-goal-after must be a multiple of --updates-per-epoch",
        ),
        (["--polish-leader-evaluations", "-100"], "--polish-leader-evaluations"),
        (["--polish-leader-target", "2"], "--polish-leader-target"),
        (["--polish-give-up", "0.0005"], "--polish-give-up must be 0 or in (--polish-target, 1)"),
        (["--polish-give-up", "nan"], "--polish-give-up"),
        (["--checkpoint-dir", "/dev/null/x"], "cannot write checkpoints"),
        (["--clip", "nan"], "--clip"),
        (["--clip", "inf"], "--clip"),
        (["--plateau-factor", "nan"], "--plateau-factor"),
        (["--lr-max", "inf"], "--lr-max"),
        (["--lr-min", "nan"], "--lr-min"),
        (["--sampler-seed=-2"], "--sampler-seed"),
        (["--study-name", "x" * 513], "--study-name"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_created(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    db = tmp_path / "s.db"
    _refused(capfd, ["--storage", f"sqlite:///{db}", *flags], named)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("storage", "named"),
    [
        ("sqlte:///{tmp}/s.db", "storage URL"),  # typo in the scheme
        ("postgressql://127.0.0.1/test", "storage URL"),
        ("sqlite:///{tmp}", "is a directory"),
        ("sqlite:///{tmp}/missing/s.db", "does not exist"),
        ("not a url", "invalid storage URL"),
    ],
)
def test_unusable_storage_urls_are_refused(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], storage: str, named: str
) -> None:
    _refused(capfd, ["--storage", storage.format(tmp=tmp_path), "--trials", "1"], named)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def made_db(tmp_path: Path) -> Path:
    """A real (empty) study database, as study.py makes it."""
    db = tmp_path / "s.db"
    config = SweepConfig(storage=f"sqlite:///{db}", study_name="made", **TINY)
    close(open_study_and_storage(config)[1])
    return db


def _run_args(db: Path) -> list[str]:
    return tiny_args(f"sqlite:///{db}", "made", trials=1, epochs=2, samples=100)


def test_a_conflicting_resume_leaves_a_rollback_journal_database_untouched(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Opening for writing switches SQLite to WAL: the settings are compared before that."""
    db = tmp_path / "s.db"
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    made = optuna.create_study(study_name="made", storage=storage)
    made.set_user_attr("config", {"samples": 123})
    close(storage)
    before = sha256(db)
    _refused(capfd, _run_args(db), "other settings", "samples")
    assert sha256(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


def test_a_file_that_is_not_a_database_is_left_alone(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "studies.db"
    db.write_text("my notes, not a database\n")
    before = sha256(db)
    _refused(capfd, _run_args(db), str(db), "not a SQLite database")
    _refused(capfd, ["report", "--storage", f"sqlite:///{db}"], "not a SQLite database")
    assert sha256(db) == before and sorted(p.name for p in tmp_path.iterdir()) == ["studies.db"]


def test_a_read_only_database_is_left_alone(
    made_db: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # We run as root, for whom permission bits do not stop writes: make it immutable instead.
    if subprocess.run(["chattr", "+i", str(made_db)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i does not work here, and root writes through chmod")
    try:
        before = sha256(made_db)
        _refused(capfd, _run_args(made_db), "read-only")
        assert sha256(made_db) == before
    finally:
        subprocess.run(["chattr", "-i", str(made_db)], check=True)


def test_a_database_locked_longer_than_the_timeout_is_left_alone(made_db: Path) -> None:
    before = sha256(made_db)
    other = sqlite3.connect(made_db, isolation_level=None)  # "another program"
    other.execute("BEGIN EXCLUSIVE")
    try:
        proc = run_study(_run_args(made_db), made_db.parent, env={TIMEOUT_ENV: "1"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "locked" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sha256(made_db) == before
    assert not (made_db.parent / "checkpoints").exists()


def test_report_on_a_missing_database_or_an_unknown_study(
    made_db: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    missing = made_db.parent / "other.db"
    _refused(capfd, ["report", "--storage", f"sqlite:///{missing}"], "no study database")
    assert not missing.exists()
    before = sha256(made_db)
    line = _refused(capfd, ["report", "--storage", f"sqlite:///{made_db}", "--study-name",
                            "nope"], "'nope'")  # fmt: skip
    assert "made" in line  # it names the studies that are there
    assert sha256(made_db) == before


# --- damaged checkpoints ---------------------------------------------------------------------

LR = 1e-4


def l1_config(config: SweepConfig, lr: float):
    """The L=1 config a trial of ``config`` trains with at learning rate ``lr``."""
    return config.training_method.make_config({"lr": lr}, config.settings)


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A real checkpoint after epoch 1 of the trial the tests continue, and its val MSE."""
    config = SweepConfig(**TINY)
    sets = Sets.build(config)
    training = Training.start(l1_config(config, LR), sets.train, sets.val)
    training.run_epoch()
    path = tmp_path_factory.mktemp("good") / "last.npz"
    save_state(training.state, path)
    return path, training.state.history[0].val_mse


def _damage(kind: str, good: Path, folder: Path) -> dict[str, object]:
    """The checkpoint attributes of a cut-off trial whose checkpoint is ``kind``."""
    bad = folder / "trial-0000" / "last.npz"
    bad.parent.mkdir()
    if kind == "corrupt":
        bad.write_bytes(b"\x00garbage" * 100)
    elif kind == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "other configuration":
        config = SweepConfig(**TINY)
        sets = Sets.build(config)
        save_state(Training.start(l1_config(config, 2 * LR), sets.train, sets.val).state, bad)
    attrs: dict[str, object] = {"checkpoint": str(bad)}
    if kind == "corrupt, an older one good":
        bad.write_bytes(b"\x00garbage")
        attrs["continues_checkpoint"] = str(good)
    return attrs


@pytest.mark.parametrize(
    ("kind", "continued"),
    [
        ("missing", False),
        ("corrupt", False),
        ("truncated", False),
        ("other configuration", False),
        ("corrupt, an older one good", True),
    ],
)
def test_a_damaged_checkpoint_means_a_warning_and_an_earlier_start_never_a_crash(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    good_checkpoint: tuple[Path, float],
    kind: str,
    continued: bool,
) -> None:
    good, epoch1_val = good_checkpoint
    db = tmp_path / "s.db"
    config = SweepConfig(storage=f"sqlite:///{db}", study_name="made", **TINY)
    study, storage = open_study_and_storage(config)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"lr": LR},
            distributions={"lr": optuna.distributions.FloatDistribution(3e-5, 3e-4, log=True)},
            user_attrs={
                "stop_reason": STOP_INTERRUPTED,
                "curves": {"val_mse": [epoch1_val]},
                **_damage(kind, good, tmp_path),
            },  # fmt: skip
            intermediate_values={1: epoch1_val},
        )
    )
    close(storage)

    assert study_py.main(_run_args(db)) == 0
    out, err = capfd.readouterr()

    assert "Traceback" not in out + err
    assert "warning: trial 1:" in out
    assert ("continuing trial 0 from epoch 1" in out) == continued
    ts = trials(f"sqlite:///{db}", "made")
    assert [t.state for t in ts] == [TrialState.FAIL, TrialState.COMPLETE]
    assert ts[1].user_attrs.get("continued_from") == (0 if continued else None)
    assert_curves_continuous(ts[1])  # a fresh start reproduces the inherited epoch 1


# --- non-finite losses -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_prunes_the_trial_as_non_finite_and_the_sweep_goes_on(
    tmp_path: Path, bad: float
) -> None:
    config = SweepConfig(trials=2, epochs=3, samples=50, workers=1)
    sets = Sets.build(config)
    inputs = sets.train.inputs.copy()
    inputs[1, 10, 0] = bad  # one poisoned sample in the training set
    sets = replace(sets, train=replace(sets.train, inputs=inputs))
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}",
                                pruner=DivergencePruner())  # fmt: skip

    study.optimize(Objective(config, sets, tmp_path, log=lambda m: None), n_trials=2,
                   catch=(SurplusTrial,))  # fmt: skip

    ts = study.get_trials()
    assert [t.state for t in ts] == [TrialState.PRUNED, TrialState.PRUNED]
    for t in ts:
        assert t.user_attrs["verdict"] == "non_finite" and t.user_attrs["verdict_epoch"] == 1
        assert t.user_attrs["stop_reason"] == "pruned"
        assert np.isfinite(t.user_attrs["val_mse"])  # the bad step was not applied
        assert t.value == t.user_attrs["val_mse"]  # one number for the trial
