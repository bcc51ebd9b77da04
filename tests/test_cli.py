"""End to end: ``study.py`` on tiny data into a temporary SQLite file, as a person runs it."""

from __future__ import annotations

import json
import math
from pathlib import Path

from cli_runs import assert_curves_continuous, finished, run_study, sha256, tiny_args, trials

from model.delivered import load_model
from model.l1.checkpoint import load_state
from sweep.records import CURVES, curve
from sweep.trial_record import read as read_record

REPORT_KEYS = {"number", "state", "params", "verdict", "epochs", "train_mse", "val_mse",
               "test_mse", "test_train_ratio", "tier"}  # fmt: skip
FINISHED_ATTRS = {"train_mse", "val_mse", "test_mse", "test_train_ratio", "test_mse_1Hz",
                  "test_mse_3Hz", "test_mse_5Hz", "test_mse_7Hz", "tier", "epochs",
                  "stop_reason", "wall_seconds", "peak_rss_mb", "best_checkpoint", "verdict",
                  "worker", "checkpoint"}  # fmt: skip


def test_three_trials_end_to_end_then_resume_runs_nothing_more(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    args = tiny_args(url, "e2e", trials=3, epochs=2, samples=200)

    first = run_study(args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    # Piped: the plain lines, one per epoch, no cursor movement; the answer last.
    assert "trial 0 epoch 1/2" in first.stdout and "\x1b[" not in first.stdout
    assert "Best: trial " in first.stdout
    assert first.stdout.rstrip().splitlines()[-1].startswith("  python study.py eval ")
    ts = trials(url, "e2e")
    assert len(ts) == 3 and len(finished(ts)) == 3
    for t in ts:
        a = t.user_attrs
        assert FINISHED_ATTRS <= set(a), sorted(FINISHED_ATTRS - set(a))
        assert 3e-5 <= t.params["lr"] <= 3e-4
        assert 1 <= a["epochs"] <= 2
        assert all(len(curve(t, c)) == a["epochs"] for c in CURVES)
        assert_curves_continuous(t)
        assert a["tier"] in ("excellent", "good", "minimum", "below")
        assert [hz for hz, _ in read_record(t).test_mse_per_freq] == [1, 3, 5, 7]
        assert math.isfinite(a["val_mse"]) and a["val_mse"] > 0
        if t.state.name == "COMPLETE":
            assert t.value == a["val_mse"]
        # The delivered model and the last training state are both readable.
        weights, config, meta = load_model(Path(a["best_checkpoint"]))
        assert config.lr == t.params["lr"] and meta["val_mse"] == a["val_mse"]
        assert load_state(Path(a["checkpoint"])).epoch == a["epochs"]
    identity = _study_attrs(url, "e2e")["config"]
    assert identity["samples"] == 200 and identity["epochs"] == 2

    report = run_study(["report", "--storage", url, "--study-name", "e2e", "--json"], tmp_path)
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert len(doc["trials"]) == 3
    assert all(REPORT_KEYS <= set(row) for row in doc["trials"])
    # The searched values under their own names (no "lr" field that held a clock's seed).
    assert [row["params"] for row in doc["trials"]] == [t.params for t in ts]
    assert doc["best"]["number"] in {t.number for t in ts}
    assert doc["best"]["val_mse"] == min(t.user_attrs["val_mse"] for t in ts)

    again = run_study(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to run" in again.stdout
    assert again.stdout.rstrip().splitlines()[-1].startswith("  python study.py eval ")
    assert len(trials(url, "e2e")) == 3


def test_conflicting_resume_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    made = run_study(tiny_args(url, "c", trials=1, epochs=1, samples=100), tmp_path)
    assert made.returncode == 0, made.stderr
    before = sha256(tmp_path / "s.db")

    other = run_study(tiny_args(url, "c", trials=2, epochs=1, samples=150), tmp_path)

    assert other.returncode == 2
    lines = other.stderr.strip().splitlines()
    assert len(lines) == 1, other.stderr
    assert "samples" in lines[0] and "Traceback" not in other.stderr
    assert sha256(tmp_path / "s.db") == before
    assert len(trials(url, "c")) == 1


def _study_attrs(url: str, name: str) -> dict:
    import optuna

    storage = optuna.storages.RDBStorage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).user_attrs
    finally:
        storage.engine.dispose()


def test_no_more_workers_than_trials_left(tmp_path: Path) -> None:
    # Two workers for one trial: the second once asked Optuna for a trial, which was then
    # refused as surplus and stayed in the study as FAIL, in the dashboard and `optuna trials`.
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = run_study(tiny_args(url, trials=1, epochs=1, workers=2), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "running with 1 worker(s)" in result.stdout
    assert [t.state.name for t in trials(url, "tiny")] == ["COMPLETE"]
