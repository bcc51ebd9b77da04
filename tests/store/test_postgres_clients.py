"""The README's PostgreSQL URL, as written (``postgresql://USER@HOST:5432/DB``), works in every
program a user points at it: ``study.py``, the ``optuna`` CLI and optuna-dashboard. SQLAlchemy
2.1 reads ``postgresql://`` as psycopg 3; with psycopg2 alone installed, study.py once worked
(it rewrote the URL for itself) while both clients failed with "Failed to import DB access
module". URLs naming psycopg2 (``postgresql+psycopg2://``) keep working too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import run_study, tiny_args
from servers import dashboard_server, get_json, postgres_database
from sqlalchemy.engine import make_url

NAME = "pg-clients"
TRIALS = 2


@pytest.fixture(scope="module")
def readme_url() -> Iterator[str]:
    """A database of its own on the server, as the README's URL: user, host, port, name."""
    with postgres_database("sweep_clients") as url:
        yield url


@pytest.fixture(scope="module")
def swept(readme_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny sweep run by study.py into the database, with the README's URL as it is."""
    folder = tmp_path_factory.mktemp("pg")
    proc = run_study([*tiny_args(readme_url, NAME, trials=TRIALS, epochs=1, samples=300),
                      "--quiet"], folder)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return readme_url


def _client(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not installed (requirements.txt installs it)")
    return exe


def _psycopg2(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(False)


@pytest.mark.parametrize("form", ["as in the README", "naming psycopg2"])
def test_optuna_studies_lists_the_study(swept: str, form: str) -> None:
    url = swept if form == "as in the README" else _psycopg2(swept)
    proc = subprocess.run([_client("optuna"), "studies", "--storage", url, "-f", "json"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert f'"name": "{NAME}"' in proc.stdout and f'"n_trials": {TRIALS}' in proc.stdout


@pytest.fixture()
def dashboard(swept: str, tmp_path: Path) -> Iterator[str]:
    """optuna-dashboard started on the README's URL, as a user starts it."""
    with dashboard_server([_client("optuna-dashboard"), swept], tmp_path / "log.txt") as base:
        yield base


def test_optuna_dashboard_shows_the_study_and_its_trials(dashboard: str) -> None:
    summaries = get_json(dashboard + "/api/studies")["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == NAME]
    detail = get_json(f"{dashboard}/api/studies/{study_id}")
    assert len(detail["trials"]) == TRIALS
    assert {t["state"] for t in detail["trials"]} <= {"Complete", "Pruned"}
    shown = {a["key"] for a in detail["trials"][0]["user_attrs"]}
    assert {"verdict", "val_mse"} <= shown


HIDE_PSYCOPG3 = """
import sys
from importlib.machinery import PathFinder


class _Hide(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg_binary", "psycopg_c"):
            return None
        return super().find_spec(name, path, target)


sys.meta_path = [_Hide if f is PathFinder else f for f in sys.meta_path]
"""


def test_without_psycopg_3_study_py_refuses_the_url_as_the_clients_do(tmp_path: Path) -> None:
    """study.py reads a URL as optuna-dashboard does: it no longer swaps in psycopg2 for
    itself, which ran a sweep into a database the user's dashboard then could not open."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDE_PSYCOPG3)  # as if psycopg 3 were not installed
    url = "postgresql://user@127.0.0.1:5432/db"
    proc = run_study(tiny_args(url, NAME), tmp_path, env={"PYTHONPATH": str(shim)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "driver is not installed" in line and "psycopg" in line, line
    assert "requirements.txt" in line
