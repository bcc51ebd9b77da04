"""A full disk under the artifact folder (issue 23, point 6): one line naming that folder (not
the checkpoint folder), exit 2, no half-written file left in it, and the rerun finishes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import finished, run_study, tiny_args, trials
from servers import small_tmpfs


@pytest.fixture
def full_artifacts(tmp_path: Path) -> Iterator[Path]:
    """``artifacts/`` beside the database, on a 64 KiB tmpfs (a best checkpoint is ~70 KB)."""
    with small_tmpfs(tmp_path / "artifacts") as folder:
        yield folder


def test_a_full_artifact_disk_names_its_folder_and_leaves_no_half_written_file(
    full_artifacts: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    checkpoints = tmp_path / "ck"
    args = [*tiny_args(url, trials=1, epochs=1, samples=300), "--quiet",
            "--checkpoint-dir", str(checkpoints)]  # fmt: skip
    first = run_study(args, tmp_path)

    assert first.returncode == 2, first.stdout + first.stderr
    assert "Traceback" not in first.stderr and len(first.stderr.strip().splitlines()) == 1
    assert f"cannot write to the artifact folder {full_artifacts}: No space left" in first.stderr
    assert str(checkpoints) not in first.stderr
    assert [p.name for p in full_artifacts.iterdir()] == []

    subprocess.run(["mount", "-o", "remount,size=16m", str(full_artifacts)], check=True)
    again = run_study(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(finished(trials(url, "tiny"))) == 1
