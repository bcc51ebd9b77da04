"""The layers in .importlinter hold, and a line that breaks one fails the check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())", "--no-cache"]  # fmt: skip


PRIVATE = "only sweep.optuna_private reaches into Optuna's private modules"
#: Our own contract types (.importlinter's contract_types), which a copy needs as well.
CONTRACT_TYPES = "tests/import_contracts.py"


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=folder, capture_output=True, text=True, timeout=120)


def test_the_project_keeps_every_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("model/data.py", "import sweep.settings", "sweep above model"),
        ("model/lstm.py", "import optuna", "model never imports Optuna"),
        ("sweep/divergence.py", "import sweep.records", "the rules modules import nothing"),
        ("sweep/criteria.py", "import model.data", "the rules modules import nothing"),
        ("sweep/report.py", "import study", "nothing imports study.py"),
        ("sweep/space.py", "import model.clock.config", "reached through model.registry only"),
        ("model/l1/config.py", "import model.clock.config", "methods do not import each other"),
        ("sweep/records.py", "import sweep.objective", "no import cycles"),
        ("sweep/creation.py", "from optuna.storages._rdb import models", PRIVATE),
        ("sweep/runner.py", "from optuna_dashboard._note import get_note", PRIVATE),
        ("bench/sweep.py", "import optuna.study._optimize", PRIVATE),
        ("sweep/axes.py", "from optuna.storages import (\n    _rdb,\n)", PRIVATE),
    ],
)
def test_a_deliberate_violation_fails_the_check(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    for name in ("model", "sweep", "bench"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests").mkdir()
    for name in ("study.py", ".importlinter", CONTRACT_TYPES):
        shutil.copy(ROOT / name, tmp_path / name)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # deliberate violation\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
