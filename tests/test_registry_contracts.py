"""Every package ``model.registry`` names is held to the import contracts.

The registry imports a method's package through importlib, a route import-linter cannot see.
So: each registered package sits under ``model`` (where "sweep above model" and "model never
imports Optuna" hold), is named in the two contracts of the methods, and, imported the way the
registry imports it (in a fresh interpreter), pulls in nothing a method may not: Optuna, the
sweep, study.py, bench, or another method.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model import registry

ROOT = Path(__file__).resolve().parent.parent
#: The contracts of .importlinter that must name each registered package, and where.
METHOD_CONTRACTS = {"methods-by-registry": "protected_modules", "methods-independent": "modules"}
#: Top-level names a method package may never bring in.
FORBIDDEN = ("optuna", "optuna_dashboard", "sweep", "study", "bench")

PROBE = """
import json, sys
from model import registry
before = set(sys.modules)
if len(sys.argv) > 1:
    registry.get(sys.argv[1])
print(json.dumps({"packages": registry.PACKAGES, "loaded": sorted(set(sys.modules) - before)}))
"""


def probe(root: Path, *name: str) -> dict:
    """The registry of the project at ``root``; with a method name, also the modules its
    package brought in, imported as ``registry.get`` imports it, in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *name], cwd=root, capture_output=True,
                          text=True, timeout=300, check=True)  # fmt: skip
    return json.loads(proc.stdout.splitlines()[-1])


def contract_gaps(root: Path) -> list[str]:
    config = configparser.ConfigParser()
    config.read(root / ".importlinter")
    gaps = []
    for name, package in probe(root)["packages"].items():
        if package.split(".")[0] != "model":
            gaps.append(f"{name}: {package} is outside model, where the layers do not hold it")
        for contract, option in METHOD_CONTRACTS.items():
            if package not in config[f"importlinter:contract:{contract}"][option].split():
                gaps.append(f"{name}: {package} is not in the {option} of {contract}")
    return gaps


def forbidden_imports(root: Path, name: str) -> list[str]:
    found = probe(root, name)
    others = [p for n, p in found["packages"].items() if n != name]
    return [
        m
        for m in found["loaded"]
        if m.split(".")[0] in FORBIDDEN or any(m == o or m.startswith(o + ".") for o in others)
    ]


def test_every_registered_package_is_named_by_the_contracts_of_the_methods() -> None:
    assert contract_gaps(ROOT) == []


@pytest.mark.parametrize("name", registry.names())
def test_a_registered_package_imports_nothing_a_method_may_not(name: str) -> None:
    assert forbidden_imports(ROOT, name) == []


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "model", tmp_path / "model", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _plant(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: the planted violation's anchor {old!r} is gone"
    path.write_text(text.replace(old, new, 1))


def test_a_package_registered_beyond_the_contracts_is_caught(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _plant(root / "model" / "registry.py", '"clock": "model.clock",',
           '"clock": "model.clock",\n    "toy": "bench.toy",')  # fmt: skip
    gaps = contract_gaps(root)
    assert "toy: bench.toy is outside model, where the layers do not hold it" in gaps
    assert "toy: bench.toy is not in the protected_modules of methods-by-registry" in gaps
    assert "toy: bench.toy is not in the modules of methods-independent" in gaps


def test_a_method_that_imports_through_importlib_what_it_may_not_is_caught(
    tmp_path: Path,
) -> None:
    """import-linter cannot see these imports; the fresh interpreter does."""
    root = _copy(tmp_path)
    init = root / "model" / "l1" / "__init__.py"
    init.write_text(init.read_text() + "\nimport importlib\n\nimportlib.import_module('optuna')"
                    "\nimportlib.import_module('model.clock.config')\n")  # fmt: skip
    bad = forbidden_imports(root, "l1")
    assert "optuna" in bad and "model.clock.config" in bad
