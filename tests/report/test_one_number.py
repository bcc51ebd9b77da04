"""One number per trial: a pruned trial's value in Optuna (what optuna-dashboard's history plot
and the optuna CLI show) is the validation MSE the report and the note give, read through the
real dashboard's HTTP API and the real ``optuna`` command, not through our own code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import study_py
from servers import dashboard_server
from test_dashboard import dashboard_command, study_detail

#: A learning rate this high jumps within three epochs (sampler seed 1: two of three trials
#: pruned after their best epoch), so a pruned trial's last epoch is worse than its best.
HIGH_LR = ["--trials", "3", "--epochs", "3", "--samples", "200", "--lr-min", "0.05",
           "--lr-max", "0.5", "--sampler-seed", "1", "--workers", "1", "--quiet",
           "--storage", "sqlite:///s.db", "--study-name", "hi"]  # fmt: skip


@pytest.fixture(scope="module")
def pruned_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("one-number")
    study_py(*HIGH_LR, cwd=folder)
    return folder


@pytest.fixture(scope="module")
def dashboard(pruned_study: Path) -> Iterator[str]:
    log = pruned_study / "dashboard.log"
    with dashboard_server([*dashboard_command(), f"sqlite:///{pruned_study / 's.db'}"],
                          log) as base:  # fmt: skip
        yield base


def optuna_cli(folder: Path, *args: str) -> object:
    exe = Path(sys.executable).with_name("optuna")
    program = str(exe) if exe.exists() else shutil.which("optuna")
    assert program is not None, "the optuna command is installed with optuna"
    proc = subprocess.run([program, *args, "--storage", "sqlite:///s.db", "--study-name", "hi",
                           "-f", "json"], cwd=folder, capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    return json.loads(proc.stdout)


def reported(folder: Path) -> dict[int, float]:
    doc = json.loads(study_py("report", "--storage", "sqlite:///s.db", "--study-name", "hi",
                              "--json", cwd=folder).stdout)  # fmt: skip
    return {row["number"]: row["val_mse"] for row in doc["trials"]}


def test_a_pruned_trials_value_is_its_validation_mse_in_the_dashboard_and_the_cli(
    pruned_study: Path, dashboard: str
) -> None:
    report = reported(pruned_study)
    _, detail = study_detail(dashboard, "hi")
    shown = {t["number"]: t for t in detail["trials"]}
    pruned = [t for t in shown.values() if t["state"] == "Pruned"]
    assert pruned, "the high learning rate prunes a trial"
    for t in pruned:
        attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
        assert "curves" not in attrs  # a system attribute, which the dashboard does not draw
        step = int(attrs["value_step"])
        steps = {v["step"]: v["value"] for v in t["intermediate_values"]}
        assert sorted(steps) == list(range(1, step + 1))  # the epochs, then the value's step
        # The case that made two numbers: the last epoch is worse than the delivered one.
        assert steps[step - 1] != report[t["number"]]
        assert steps[step] == report[t["number"]]
        assert "Optuna's value of this pruned trial" in t["note"]["body"]
        assert f"{report[t['number']]:.5f}" in t["note"]["body"]
    for number, t in shown.items():
        assert t["values"] == [report[number]], number  # the history plot's point

    listed = optuna_cli(pruned_study, "trials")
    assert {t["number"]: t["value"]["honest validation MSE"] for t in listed} == report
    best = optuna_cli(pruned_study, "best-trial")
    assert best["value"]["honest validation MSE"] == min(report.values())
