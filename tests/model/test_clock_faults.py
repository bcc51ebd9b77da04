"""A clock trial cut off after some of its restarts (SIGKILL, SIGTERM) continues from its last
checkpoint and ends exactly as if it had never stopped: the attempt, its initial weights, its
Adam state and its noise generator all travel in the checkpoint."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from cli_runs import Sweep, assert_same_run, run_study, tiny_args, trials
from optuna.trial import FrozenTrial, TrialState

from study import EXIT_TERMINATED

# Tiny data: every attempt stalls, so the trial restarts every 3 epochs, 8 times, ~27 epochs.
# Ten updates an epoch instead of 100: the stall rule still judges each attempt after 3 epochs,
# so the attempts, restarts and checkpoints are the same in number, at a tenth of the work.
NAME = "clock"


def _args(url: str) -> list[str]:
    return ["--method", "clock", *tiny_args(url, NAME, trials=1, epochs=4),
            "--updates-per-epoch", "10"]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> FrozenTrial:
    folder = tmp_path_factory.mktemp("clock-reference")
    url = f"sqlite:///{folder / 's.db'}"
    done = run_study(_args(url), cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    (t,) = trials(url, NAME)
    assert t.user_attrs["epochs"] > 12 and "attempt 9/9" in done.stdout  # it did restart
    return t


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGKILL, -signal.SIGKILL),
                                           (signal.SIGTERM, EXIT_TERMINATED)])  # fmt: skip
def test_a_clock_trial_cut_off_after_restarts_ends_as_if_never_cut_off(
    tmp_path: Path, uninterrupted: FrozenTrial, sig: int, code: int
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    sweep = Sweep(_args(url), cwd=tmp_path)
    sweep.wait_until(lambda: sweep.saw(r"trial 0 epoch \d+/\d+ .* attempt 4/9"))
    assert sweep.signal(sig) == code

    again = run_study(_args(url), cwd=tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    found = re.search(r"continuing trial 0 from epoch (\d+)", again.stdout)
    assert found and int(found.group(1)) >= 9, again.stdout  # attempt 4 starts at epoch 10
    cut, heir = trials(url, NAME)
    assert cut.state == TrialState.FAIL and heir.user_attrs["continued_from"] == 0
    assert_same_run(heir, uninterrupted)
