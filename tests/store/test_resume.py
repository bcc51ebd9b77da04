"""Nothing lost: a sweep killed (SIGKILL) or interrupted (Ctrl-C) at any moment continues from
the last completed epoch of the trial it cut off, and ends as if it had never stopped."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from cli_runs import (
    SLOW_SAVE_ENV,
    Sweep,
    Trigger,
    assert_curves_continuous,
    assert_same_run,
    close,
    finished,
    integrity,
    run_study,
    running_with_owner,
    tiny_args,
    tmp_files,
    trials,
    writing,
)
from optuna.trial import FrozenTrial, TrialState

from model.checkpoint import CheckpointError
from model.delivered import load_model
from model.l1.checkpoint import load_state
from sweep.admission import SurplusTrial
from sweep.delivery import Sets
from sweep.identity import open_study_and_storage
from sweep.objective import Objective
from sweep.records import (
    CURVES_KEY,
    STAGE,
    STOP_CRASHED,
    STOP_DUPLICATE,
    STOP_INTERRUPTED,
    STOP_OWNER_DIED,
    VAL_MSE_CURVE,
)
from sweep.settings import SweepConfig
from sweep.store import liveness, optuna_private
from sweep.store.recovery import MAX_STALLED_RETRIES, recover, requeue

optuna.logging.set_verbosity(optuna.logging.WARNING)
SLOW = {SLOW_SAVE_ENV: "0.4"}  # every checkpoint write pauses before its rename
# Ctrl-C must land after epoch 2's line and before epoch 3's rename: a window of one pause,
# which a loaded machine once let pass (the run ended with 0); this test pays for a wider one.
SLOWER = {SLOW_SAVE_ENV: "1.5"}
EPOCH_LINE = re.compile(r"trial (\d+) epoch (\d+)/")


# --- the crash test -------------------------------------------------------------------------


def before_first_checkpoint(sweep: Sweep, folder: Path) -> Callable[[], bool]:
    # The first rename comes at least SLOW seconds after the trial starts.
    return lambda: bool(running_with_owner(folder / "s.db"))


def mid_epoch(sweep: Sweep, folder: Path) -> Callable[[], bool]:
    polls_since_epoch_line = [0]

    def after_an_epoch_line() -> bool:
        # One poll (a few ms) after an epoch is logged, the next one is under way; its
        # checkpoint cannot come before the slow save's pause.
        if polls_since_epoch_line[0] or sweep.saw(r"trial \d+ epoch \d+/"):
            polls_since_epoch_line[0] += 1
        return polls_since_epoch_line[0] > 1

    return after_an_epoch_line


def just_renamed(sweep: Sweep, folder: Path) -> Callable[[], bool]:
    stale = set(tmp_files(folder, "last.npz"))
    seen: set[Path] = set()

    def renamed() -> bool:
        now = set(tmp_files(folder, "last.npz")) - stale
        seen.update(now)
        return (
            bool(seen) and not (seen & now) and all(p.with_name("last.npz").exists() for p in seen)
        )

    return renamed


KILL_POINTS: list[tuple[str, Trigger]] = [
    ("before the first checkpoint", before_first_checkpoint),
    ("mid-epoch", mid_epoch),
    ("while a checkpoint is written", writing("last.npz")),
    ("between epochs, just after a checkpoint", just_renamed),
    ("while the best model is written", writing("best.npz")),
]


@dataclass(frozen=True)
class Kill:
    point: str
    trial: int
    checkpoint_epoch: int | None
    """Newest checkpoint on disk when it died: the epoch its continuation must start from."""
    tmp_present: bool
    """A checkpoint was being written (its temporary file was there)."""
    output: str


def _kill_at(folder: Path, args: list[str], point: str, trigger: Trigger) -> Kill:
    stale = set(tmp_files(folder, ""))
    sweep = Sweep(args, cwd=folder, env=SLOW)
    sweep.wait_until(trigger(sweep, folder))
    tmp_present = bool(set(tmp_files(folder, "")) - stale)
    assert sweep.signal(signal.SIGKILL) == -signal.SIGKILL
    url = f"sqlite:///{folder / 's.db'}"
    (victim,) = [t for t in trials(url, "crash") if t.state == TrialState.RUNNING]
    a = victim.user_attrs
    line = [a.get("checkpoint"), a.get("continues_checkpoint"), *a.get("fallback_checkpoints", [])]
    epochs = [load_state(folder / p).epoch for p in line if p and (folder / p).exists()]
    return Kill(point, victim.number, max(epochs, default=None), tmp_present, sweep.output)


def test_sigkill_at_every_point_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    # A relative URL, as a person types it: the trials store relative checkpoint paths.
    args = tiny_args("sqlite:///s.db", "crash", trials=3, epochs=3, samples=1000)
    kills = [_kill_at(tmp_path, args, point, trigger) for point, trigger in KILL_POINTS]
    # The last run starts from another folder: the checkpoints are found all the same.
    elsewhere = tiny_args(f"sqlite:///{tmp_path.name}/s.db", "crash", trials=3, epochs=3,
                          samples=1000)  # fmt: skip
    last = run_study(elsewhere, cwd=tmp_path.parent)
    assert last.returncode == 0, last.stdout + last.stderr
    assert "warning" not in last.stdout

    ts = {t.number: t for t in trials(url, "crash")}
    assert len(finished(list(ts.values()))) == 3
    assert not [t for t in ts.values() if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    logs = "\n".join([*(k.output for k in kills), last.stdout])
    for k in kills:
        dead = ts[k.trial]
        assert dead.state == TrialState.FAIL and dead.user_attrs["stop_reason"] == STOP_OWNER_DIED
        (heir,) = [t for t in ts.values() if t.user_attrs.get("continues_trial") == k.trial
                   and t.user_attrs.get("stop_reason") != STOP_DUPLICATE]  # fmt: skip
        if k.checkpoint_epoch is None:
            assert f"trial {k.trial} starts again from scratch (it was cut off before" in logs, k
        else:
            assert heir.user_attrs["continued_from"] == k.trial
            assert f"continuing trial {k.trial} from epoch {k.checkpoint_epoch}" in logs, k
        # The heir starts with the dead trial's reported curve, unchanged.
        for step, value in dead.intermediate_values.items():
            assert heir.intermediate_values[step] == value
    for t in finished(list(ts.values())):
        assert_curves_continuous(t)
    _assert_no_epoch_logged_twice(logs, ts)
    for f in tmp_path.glob("checkpoints/**/*.npz"):
        try:
            load_state(f) if f.name == "last.npz" else load_model(f)
        except CheckpointError as exc:
            pytest.fail(f"unreadable checkpoint {f}: {exc}")
    assert not list(tmp_path.glob("checkpoints/**/*.tmp"))
    assert integrity(tmp_path / "s.db") == "ok"
    recovered = sum(k.checkpoint_epoch or 0 for k in kills)
    print(f"\n{len(kills)} kill points, {len(kills)} trials continued, {recovered} epochs "
          "recovered from checkpoints: " + "; ".join(
              f"{k.point}: trial {k.trial} from epoch {k.checkpoint_epoch or 0}"
              f"{' (tmp file present)' if k.tmp_present else ''}" for k in kills))  # fmt: skip


def _assert_no_epoch_logged_twice(logs: str, ts: dict[int, FrozenTrial]) -> None:
    """An epoch is logged after its checkpoint is written: a chain of continued trials must
    log each epoch once at most, or an epoch was trained again after it was saved."""

    def root(n: int) -> int:
        parent = ts[n].user_attrs.get("continues_trial")
        return n if parent is None else root(parent)

    seen = [(root(int(m[1])), int(m[2])) for m in EPOCH_LINE.finditer(logs)]
    assert len(seen) == len(set(seen)), sorted(seen)


# --- a continued trial equals an uninterrupted one ------------------------------------------

LR = 1e-4
SAME_RUN = dict(trials=1, epochs=4, samples=200)


def _prepared(folder: Path, name: str) -> tuple[str, list[str]]:
    """A study whose only trial is queued with a fixed learning rate (the run is then fully
    deterministic: same data, same initial weights, same lr)."""
    url = f"sqlite:///{folder / 's.db'}"
    config = SweepConfig(storage=url, study_name=name, workers=1, **SAME_RUN)
    study, storage = open_study_and_storage(config, heartbeat=False)
    study.enqueue_trial({"lr": LR})
    close(storage)
    return url, tiny_args(url, name, **SAME_RUN)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> FrozenTrial:
    folder = tmp_path_factory.mktemp("reference")
    url, args = _prepared(folder, "same")
    done = run_study(args, cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    (t,) = trials(url, "same")
    assert t.state == TrialState.COMPLETE and t.params["lr"] == LR
    return t


def test_run_killed_after_epoch_2_ends_as_if_never_killed(
    tmp_path: Path, uninterrupted: FrozenTrial
) -> None:
    url, args = _prepared(tmp_path, "same")
    sweep = Sweep(args, cwd=tmp_path, env=SLOW)
    # Epoch 2 is logged once its checkpoint is written; epoch 3's write pauses 0.4 s first.
    sweep.wait_until(lambda: sweep.saw(r"trial 0 epoch 2/4"))
    assert sweep.signal(signal.SIGKILL) == -signal.SIGKILL

    again = run_study(args, cwd=tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "continuing trial 0 from epoch 2" in again.stdout
    dead, heir = trials(url, "same")
    assert dead.state == TrialState.FAIL and dead.user_attrs["stop_reason"] == STOP_OWNER_DIED
    assert heir.state == TrialState.COMPLETE and heir.user_attrs["continued_from"] == 0
    assert_same_run(heir, uninterrupted)


def test_ctrl_c_exits_130_prints_the_resume_command_and_the_rerun_continues(
    tmp_path: Path, uninterrupted: FrozenTrial
) -> None:
    url, args = _prepared(tmp_path, "same")
    sweep = Sweep(args, cwd=tmp_path, env=SLOWER)
    sweep.wait_until(lambda: sweep.saw(r"trial 0 epoch 2/4"))

    assert sweep.signal(signal.SIGINT) == 130
    assert "python study.py --trials 1" in sweep.output and url in sweep.output
    assert "Traceback" not in sweep.output
    (cut,) = trials(url, "same")
    assert cut.state == TrialState.FAIL and cut.user_attrs["stop_reason"] == STOP_INTERRUPTED
    assert load_state(Path(cut.user_attrs["checkpoint"])).epoch == 2
    assert not list(tmp_path.glob("checkpoints/**/*.tmp"))  # the abandoned write is cleaned

    again = run_study(args, cwd=tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "continuing trial 0 from epoch 2" in again.stdout
    _, heir = trials(url, "same")
    assert heir.user_attrs["continued_from"] == 0
    assert_same_run(heir, uninterrupted)


# --- recovery rules, through a real (in-memory) study ---------------------------------------


def _asked(study: optuna.Study, worker: str, values: dict[int, float]) -> optuna.Trial:
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(3e-5, 3e-4, log=True)})
    trial.set_user_attr("worker", worker)
    trial.set_user_attr("checkpoint", "checkpoints/x/trial-0000/last.npz")
    for step, value in values.items():
        trial.report(value, step)
    return trial


def _running(study: optuna.Study, worker: str, values: dict[int, float]) -> FrozenTrial:
    number = _asked(study, worker, values).number
    return study.get_trials(deepcopy=False)[number]


def _cut(study: optuna.Study, trial: optuna.Trial, reason: str) -> FrozenTrial:
    """``trial`` (asked in this process) ends as cut off with ``reason``."""
    trial.set_user_attr("stop_reason", reason)
    study.tell(trial, state=TrialState.FAIL)
    return study.get_trials(deepcopy=False)[trial.number]


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


@pytest.mark.parametrize(
    ("worker", "taken_over"),
    [
        (None, False),  # this very process: alive
        ("elsewhere/1:4242:1", False),  # another host: left to the heartbeat
        ("dead", True),  # this host, process gone
    ],
)
def test_recover_takes_over_only_trials_whose_process_is_gone(
    worker: str | None, taken_over: bool
) -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    if worker is None:
        worker = liveness.worker_id()
    elif worker == "dead":
        worker = f"{liveness.host_id()}:{_dead_pid()}:1"
    t = _running(study, worker, {1: 0.4, 2: 0.35})

    queued = recover(study, storage)

    after = study.get_trials(deepcopy=False)
    if not taken_over:
        assert queued == [] and after[t.number].state == TrialState.RUNNING
        return
    assert queued == [t.number]
    assert after[t.number].state == TrialState.FAIL
    assert after[t.number].user_attrs["stop_reason"] == STOP_OWNER_DIED
    copy = after[-1]
    assert copy.state == TrialState.WAITING and copy.params == t.params
    assert copy.intermediate_values == {1: 0.4, 2: 0.35}
    assert copy.user_attrs["continues_trial"] == t.number
    assert copy.user_attrs["continues_checkpoint"] == t.user_attrs["checkpoint"]
    assert copy.system_attrs["retry_history"] == [t.number]
    assert recover(study, storage) == []  # queued once only


@pytest.mark.parametrize("where", ["system", "user"])
def test_a_copy_carries_the_curves_as_a_system_attribute(where: str) -> None:
    # "user": a trial of a study recorded before the curves moved off the user attributes;
    # its copy keeps them where they are kept now, and does not show them to the dashboard.
    study = optuna.create_study()
    trial = _asked(study, liveness.worker_id(), {1: 0.4, 2: 0.35})
    curves = {VAL_MSE_CURVE: [0.4, 0.35], STAGE: ["grow", "grow"]}
    if where == "system":
        optuna_private.set_trial_system_attr(trial, CURVES_KEY, curves)
    else:
        trial.set_user_attr(CURVES_KEY, curves)
    assert requeue(study, _cut(study, trial, STOP_INTERRUPTED))
    copy = study.get_trials(deepcopy=False)[-1]
    assert copy.state == TrialState.WAITING
    assert copy.system_attrs[CURVES_KEY] == curves and CURVES_KEY not in copy.user_attrs


def test_recover_queues_no_more_copies_than_the_run_needs_the_furthest_along_first() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    cut = []
    for epochs in (1, 3, 2):  # three trials interrupted after this many epochs
        t = _asked(study, liveness.worker_id(), {e: 0.5 for e in range(1, epochs + 1)})
        cut.append(_cut(study, t, STOP_INTERRUPTED).number)
    study.enqueue_trial({"lr": 1e-4})  # one trial already waiting

    # Three trials still needed, one waiting: room for two copies, of the two furthest along.
    assert recover(study, storage, needed=3) == sorted([cut[1], cut[2]])
    assert recover(study, storage, needed=3) == []  # three waiting now
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert sorted(t.user_attrs.get("continues_trial", -1) for t in waiting) == [-1, *cut[1:]]
    assert recover(study, storage) == [cut[0]]  # not limited: the last one too


def test_recover_counts_trials_running_in_live_processes_against_the_room() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    cut = [_cut(study, _asked(study, liveness.worker_id(), {1: 0.5}), STOP_INTERRUPTED).number
           for _ in range(2)]  # fmt: skip
    _running(study, liveness.worker_id(), {1: 0.5})  # alive: this very process runs it

    assert recover(study, storage, needed=2) == [cut[0]]  # that one will finish too


def test_a_trial_that_keeps_crashing_without_progress_is_given_up() -> None:
    study = optuna.create_study()
    trial = _cut(study, _asked(study, "x", {1: 0.4}), STOP_CRASHED)
    attempts = 0
    while requeue(study, trial):
        attempts += 1
        # The copy starts, reports nothing new, and crashes its process.
        trial = _cut(study, study.ask(), STOP_CRASHED)
    assert attempts == MAX_STALLED_RETRIES


def test_two_copies_of_one_cut_off_trial_run_once(tmp_path: Path) -> None:
    """Two workers recovering at once may both queue the same trial: only one runs."""
    config = SweepConfig(trials=2, epochs=1, samples=50, workers=1)
    study = optuna.create_study()
    failed = _cut(study, _asked(study, "x", {}), STOP_INTERRUPTED)
    requeue(study, failed)
    requeue(study, failed)
    objective = Objective(config, Sets.build(config), tmp_path, log=lambda m: None)

    study.optimize(objective, n_trials=3, catch=(SurplusTrial,))

    by_state = {s: [t for t in study.get_trials() if t.state == s] for s in TrialState}
    assert [t.number for t in by_state[TrialState.COMPLETE]] == [1, 3]
    assert by_state[TrialState.FAIL][-1].user_attrs["stop_reason"] == STOP_DUPLICATE


def test_a_checkpoint_of_the_other_engine_continues(tmp_path: Path) -> None:
    """--engine does not change a trial's numbers, so resuming with the other one continues
    the checkpoint instead of starting the trial again."""
    from dataclasses import replace as swap

    from model import registry
    from model.data import DataConfig, make_set
    from model.l1.checkpoint import save_state
    from model.l1.config import TrainConfig
    from model.l1.training import Training
    from sweep.continuation import newest_state

    d = make_set(1, DataConfig(samples=20))
    ref = Training.start(TrainConfig(lr=1e-3, epochs=3, engine="reference"), d, d)
    ref.run_epoch()
    save_state(ref.state, tmp_path / "last.npz")
    fast_config = swap(ref.state.config, engine="fast")
    state, problems = newest_state([tmp_path / "last.npz"], registry.get("l1"), fast_config)
    assert problems == [] and state is not None
    assert state.epoch == 1 and state.config == fast_config


@pytest.mark.parametrize(("argv", "module", "line"), [
    (["--trials", "1"], "numpy", "interrupted while starting: nothing was changed"),
    (["report"], "sweep.report.summary",
     "interrupted (its files are written whole or not at all)"),
    (["eval", "--trial", "0"], "sweep.report.evaluation",
     "interrupted (its files are written whole or not at all)"),
])  # fmt: skip
def test_ctrl_c_while_study_py_loads_prints_one_line_and_changes_nothing(
    tmp_path: Path, argv: list[str], module: str, line: str
) -> None:
    """A Ctrl-C during study.py's own imports (numpy and more: seconds on a cold disk), or
    during a report or an eval, printed a KeyboardInterrupt traceback. An import hook delivers
    it at the first import of ``module``, every time."""
    from cli_runs import STUDY_PY

    hook = (
        "import os, runpy, signal, sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {module!r}:\n"
        "            sys.meta_path.remove(self)\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        f"sys.argv = [{STUDY_PY!r}, *{argv!r}]\n"
        "sys.path.insert(0, os.path.dirname(sys.argv[0]))\n"
        f"runpy.run_path({STUDY_PY!r}, run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", hook], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip() == line
    assert list(tmp_path.iterdir()) == []
