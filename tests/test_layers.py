"""The layers in .importlinter hold, and a line that breaks one fails the check."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())", "--no-cache"]  # fmt: skip


PRIVATE = "only sweep.store.optuna_private reaches into Optuna's private modules"
#: Our own contract types (.importlinter's contract_types), which a copy needs as well.
CONTRACT_TYPES = "tests/import_contracts.py"


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=folder, capture_output=True, text=True, timeout=120)


def test_the_project_keeps_every_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _forbidden(contract: str) -> set[str]:
    """The modules a contract of .importlinter forbids."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    return set(parser[f"importlinter:contract:{contract}"]["forbidden_modules"].split())


def test_the_wing_contracts_name_every_core_module() -> None:
    # A wing's contract lists the core's modules one by one (a forbidden contract cannot say
    # "all of sweep but this wing"): a core module added later must be added there too.
    core = {f"sweep.{p.stem}" for p in (ROOT / "sweep").glob("*.py") if p.stem != "__init__"}
    wings = {f"sweep.{p.name}" for p in (ROOT / "sweep").iterdir() if (p / "__init__.py").exists()}
    assert wings == {"sweep.rules", "sweep.store", "sweep.report"}
    assert core | wings - {"sweep.rules"} <= _forbidden("rules-wing")
    assert core - {"sweep.records", "sweep.paths"} <= _forbidden("store-wing")
    assert "sweep.report" in _forbidden("store-wing")


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("model/data.py", "import sweep.settings", "sweep above model"),
        ("model/lstm.py", "import optuna", "model never imports Optuna"),
        ("sweep/rules/divergence.py", "import sweep.records", "the rules wing imports nothing"),
        ("sweep/rules/criteria.py", "import model.data", "the rules wing imports nothing"),
        ("sweep/rules/criteria.py", "import sweep.paths", "the rules wing imports nothing"),
        ("sweep/store/liveness.py", "import sweep.report.notes", "the store wing reads no report"),
        ("sweep/store/recovery.py", "import sweep.settings", "the store wing reads no report"),
        ("sweep/report/notes.py", "import sweep.runner", "the report wing reads studies"),
        ("sweep/report/summary.py", "import study", "nothing imports study.py"),
        ("sweep/space.py", "import model.clock.config", "reached through model.registry only"),
        ("model/l1/config.py", "import model.clock.config", "methods do not import each other"),
        ("sweep/records.py", "import sweep.objective", "no import cycles"),
        ("sweep/store/creation.py", "from optuna.storages._rdb import models", PRIVATE),
        ("sweep/runner.py", "from optuna_dashboard._note import get_note", PRIVATE),
        ("bench/sweep.py", "import optuna.study._optimize", PRIVATE),
        ("sweep/report/axes.py", "from optuna.storages import (\n    _rdb,\n)", PRIVATE),
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
