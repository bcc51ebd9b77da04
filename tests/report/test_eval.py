"""`study.py eval`: a finished trial's model on a fresh noise seed, honest MSE."""

from __future__ import annotations

import re

import pytest
from conftest import TinyStudy, study_py

from model.data import make_set
from model.delivered import load_model
from model.evaluate import evaluate
from model.lstm import module_from_weights
from study import join_negative_values
from sweep.report.evaluation import data_config_of


def test_eval_prints_the_honest_mse_of_the_trials_model_on_any_seed(tiny_study: TinyStudy) -> None:
    study = tiny_study.load()
    trial = study.trials[1]
    out = study_py("eval", "--trial", "1", "--seed", "11", "--storage", "sqlite:///s.db",
                   "--study-name", "tiny", cwd=tiny_study.folder).stdout  # fmt: skip
    printed = float(re.search(r"honest MSE ([0-9.]+)", out).group(1))
    # The same number, computed independently through the torch reference model.
    weights, config, _ = load_model(tiny_study.folder / trial.user_attrs["best_checkpoint"])
    model = module_from_weights(weights, 5, config.hidden_size)
    expected = evaluate(model, make_set(11, data_config_of(study))).mse
    assert printed == pytest.approx(expected, abs=1e-5)
    assert out.count(" Hz ") == 4
    # Another seed is other noise, so (almost surely) another number.
    other = study_py("eval", "--trial", "1", "--seed", "12", "--storage", "sqlite:///s.db",
                     "--study-name", "tiny", cwd=tiny_study.folder).stdout  # fmt: skip
    assert re.search(r"honest MSE ([0-9.]+)", other).group(1) != f"{printed:.5f}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trial", "99"], "has no trial 99"),
        (["--trial", "0", "--study-name", "nope"], "no study named 'nope'"),
    ],
)
def test_eval_refuses_what_it_cannot_evaluate(tiny_study: TinyStudy, args, message) -> None:
    proc = study_py("eval", "--storage", "sqlite:///s.db", "--study-name", "tiny", *args,
                    cwd=tiny_study.folder, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_negative_numbers_reach_the_validation_as_values() -> None:
    assert join_negative_values(["--lr-min", "-1e-4", "--trials", "3"]) == [
        "--lr-min=-1e-4", "--trials", "3"
    ]  # fmt: skip
    assert join_negative_values(["--quiet", "--seed", "-3"]) == ["--quiet", "--seed=-3"]
    proc = study_py("--lr-min", "-1e-4", check=False)
    assert proc.returncode == 2 and "--lr-min must be in (0, 1)" in proc.stderr


def test_eval_finds_relative_checkpoints_from_another_folder(
    tiny_study: TinyStudy, tmp_path
) -> None:
    # The sweep stored paths relative to where it ran; eval runs elsewhere with an absolute URL.
    out = study_py("eval", "--trial", "0", "--storage", tiny_study.url, "--study-name", "tiny",
                   cwd=tmp_path).stdout  # fmt: skip
    assert "honest MSE" in out and str(tiny_study.folder) in out
