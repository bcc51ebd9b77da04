"""The sweep's configuration: one frozen dataclass, from which study.py builds its flags."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field

from model import registry
from model.data import FREQUENCIES, TEST_SEED, TRAIN_SEED, VALIDATION_SEED, DataConfig
from model.method import Method, Settings, StallRule
from sweep.paths import MAX_STUDY_NAME
from sweep.pruner import stall_check
from sweep.rules.criteria import EXCELLENT
from sweep.rules.stall import STALL_GRAD_NORM, STALL_PATIENCE, STARTED_BLOCK_MSE
from sweep.space import lowest

DEFAULT_STORAGE = "sqlite:///studies.db"
DEFAULT_STUDY = registry.get(registry.DEFAULT).default_study
#: The learning-rate range the sweep searches by default (log-uniform).
LR_MIN = 3e-5
LR_MAX = 3e-4
#: The clock's polish budget (bench/results/polish.md).
POLISH_EVALUATIONS = 600
#: Where a clock's polish stops: once excellent, so every grown clock is delivered soon and the
#: study's leader gets the longer budget (sweep.rules.leader).
POLISH_TARGET = EXCELLENT.max_train
#: The leader's polish: 1,300 evaluations took one grown clock under 0.0002, still falling
#: ~10% per 100 (bench/results/polish.md), so 2,000 in all, stopping under 0.00015.
POLISH_LEADER_EVALUATIONS = 2000
#: Every run's goal counts from its second polish epoch on, so runs are compared for the lead
#: after the same effort: replayed on a measured sweep, from the first epoch no run would have
#: led (the first excellent clock, at 0.00047 with no descent left, was ahead of the two that
#: ended under 0.0002); from the second, the best of them leads (bench/results/polish.md).
POLISH_GOAL_AFTER = 200
POLISH_LEADER_TARGET = 1.5e-4
#: A run still above twice the target at its goal is given up there: over the 13 recorded clock
#: sweeps no run above 0.00184 at 200 evaluations reached 0.001 within 600, and runs that far
#: behind spent ~400 evaluations each for nothing (bench/results/polish.md, "Giving up").
POLISH_GIVE_UP = 2 * POLISH_TARGET

#: Most workers per core. A worker trains one trial on one core, so more only share the cores
#: and memory (~200 MB each); thousands would meet the system's limit on processes.
WORKERS_PER_CORE = 4


def max_workers() -> int:
    return WORKERS_PER_CORE * (os.cpu_count() or 1)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _flags_named(message: str) -> str:
    """A method's config error in the words of study.py: its first word, and every field of
    ours with an underscore in it, as the flag that sets it."""
    first, _, rest = message.partition(" ")
    for f in dataclasses.fields(SweepConfig):
        if "_" in f.name:
            rest = re.sub(rf"\b{f.name}\b", _flag(f.name), rest)
    return f"{_flag(first)} {rest}"


def _help(text: str, flag_type: type | None = None, **kw: object) -> dict:
    """A field's flag text; ``flag_type`` for a field whose default (None: the method's own)
    does not name its type."""
    meta = {"help": text} if flag_type is None else {"help": text, "type": flag_type}
    return {"metadata": meta, **kw}


@dataclass(frozen=True)
class SweepConfig:
    """Everything one sweep needs; each field is a flag of ``study.py`` (``_`` -> ``-``)."""

    trials: int = field(default=20, **_help("finished trials (complete or pruned) to reach"))
    method: str = field(
        default=registry.DEFAULT,
        **_help(
            f"training method, one of: {', '.join(registry.names())} (the README describes each; "
            "each has its own study by default)"
        ),
    )
    epochs: int | None = field(
        default=None,
        **_help(
            "most epochs per trial (default: the method's own; l1: the plan's 30; clock: "
            "epochs of --updates-per-epoch updates per attempt, 90%% of them growing, its "
            "default measured in docs/method.md; a stalled attempt starts over from other "
            "initial weights; the polish stage's epochs come on top)",
            flag_type=int,
        ),
    )
    updates_per_epoch: int = field(
        default=100, **_help("clock method: optimizer updates per reported epoch")
    )
    tune_epochs: int = field(
        default=0,
        **_help(
            "clock method: epochs of the full-length Adam stage (tune), out of --epochs (0: "
            "none when there is a polish stage, else 10%%)"
        ),
    )
    polish_evaluations: int = field(
        default=POLISH_EVALUATIONS,
        **_help(
            "clock method: most loss+gradient evaluations of the polish stage (L-BFGS on the "
            "full-length loss, after the tune stage; a multiple of --updates-per-epoch; 0: no "
            "polish; bench/results/polish.md measured it)"
        ),
    )
    polish_target: float = field(
        default=POLISH_TARGET,
        **_help(
            "clock method: a trial's polish stops once its honest validation MSE is under "
            "this (default: the excellent tier's train bound), saving the rest of its budget "
            "for other trials, unless it leads the study (0: spend the budget)"
        ),
    )
    polish_goal_after: int = field(
        default=POLISH_GOAL_AFTER,
        **_help(
            "clock method: polish evaluations before --polish-target counts (every trial is "
            "compared for the lead after the same effort)"
        ),
    )
    polish_give_up: float = field(
        default=POLISH_GIVE_UP,
        **_help(
            "clock method: a trial's polish stops at --polish-goal-after evaluations (or any "
            "later epoch) while its honest validation MSE is above this: runs that far behind "
            "did not reach --polish-target in the recorded sweeps (0: never)"
        ),
    )
    polish_leader_evaluations: int = field(
        default=POLISH_LEADER_EVALUATIONS,
        **_help(
            "clock method: most polish evaluations in all of the study's leader: a trial whose "
            "MSE at its goal beats every other trial's there (finished or polishing; one of "
            "them excellent) polishes on past --polish-target and --polish-evaluations while "
            "it leads (0: none does)"
        ),
    )
    polish_leader_target: float = field(
        default=POLISH_LEADER_TARGET,
        **_help(
            "clock method: the leader's polish stops once its honest validation MSE is under "
            "this (0: it spends --polish-leader-evaluations)"
        ),
    )
    lr_min: float = field(default=LR_MIN, **_help("lower bound of the log-uniform lr range"))
    lr_max: float = field(default=LR_MAX, **_help("upper bound of the log-uniform lr range"))
    storage: str = field(default=DEFAULT_STORAGE, **_help("Optuna storage URL (SQLAlchemy)"))
    study_name: str = field(
        default="",
        **_help("name of the study in the storage (default: the method's own, lstm-l1-lr for l1)"),
    )
    samples: int = field(default=10_000, **_help("samples per frequency block (10 s at 1 kHz)"))
    seed: int = field(
        default=0,
        **_help(
            "l1: seed of the weight initialisation; clock: the seed is searched instead "
            "(the sampler's proposals follow --sampler-seed)"
        ),
    )
    sampler_seed: int = field(
        default=-1,
        **_help(
            "seed of the sampler's proposals: N >= 0 makes a sweep repeatable (worker i of "
            "every run with the same N, flags and starting study proposes the same values); "
            "-1 draws a fresh stream per process, so workers started anywhere, even by "
            "separate commands, never propose the same values"
        ),
    )
    train_seed: int = field(default=TRAIN_SEED, **_help("noise seed of the training set"))
    val_seed: int = field(default=VALIDATION_SEED, **_help("noise seed of the validation set"))
    test_seed: int = field(default=TEST_SEED, **_help("noise seed of the test set"))
    clip: float = field(default=1.0, **_help("gradient-norm clip"))
    plateau_factor: float = field(default=0.5, **_help("ReduceLROnPlateau factor"))
    plateau_patience: int = field(default=5, **_help("ReduceLROnPlateau patience (epochs)"))
    early_stopping_patience: int = field(default=10, **_help("early-stopping patience"))
    hidden_size: int = field(default=64, **_help("LSTM hidden units"))
    engine: str = field(
        default="fast",
        **_help("l1 trainer: fast (compiled) or reference (eager PyTorch); same numbers"),
    )
    workers: int = field(
        default=os.cpu_count() or 1, **_help("worker processes running trials at once")
    )
    checkpoint_dir: str = field(
        default="", **_help("where trial checkpoints go (default: checkpoints/ beside the db)")
    )
    quiet: bool = field(default=False, **_help("print one line per trial, not per epoch"))
    plain: bool = field(
        default=False,
        **_help(
            "on a terminal too, print plain lines instead of the live view (a line per "
            "running trial and one for the study, redrawn in place); piped or redirected "
            "output is always plain"
        ),
    )

    def __post_init__(self) -> None:
        if self.method not in registry.names():
            raise ValueError(
                f"--method must be one of {', '.join(registry.names())}, got {self.method!r}"
            )
        if not self.study_name:
            object.__setattr__(self, "study_name", self.training_method.default_study)
        if self.epochs is None:
            object.__setattr__(self, "epochs", self.training_method.default_epochs)
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{_flag(f.name)} must be a finite number, got {v}")
        if self.trials < 1:
            raise ValueError(f"--trials must be a positive number, got {self.trials}")
        if self.epochs < 1:
            raise ValueError(f"--epochs must be a positive number, got {self.epochs}")
        if self.samples < 2:
            raise ValueError(f"--samples must be at least 2, got {self.samples}")
        if self.workers < 1:
            raise ValueError(f"--workers must be a positive number, got {self.workers}")
        if self.workers > max_workers():
            raise ValueError(f"--workers must be at most {max_workers()} ({WORKERS_PER_CORE} "
                             f"per core here), got {self.workers}")  # fmt: skip
        for name in ("lr_min", "lr_max"):
            v = getattr(self, name)
            if not (0.0 < v < 1.0):
                raise ValueError(f"--{name.replace('_', '-')} must be in (0, 1), got {v}")
        if self.lr_min >= self.lr_max:
            raise ValueError(
                f"--lr-min ({self.lr_min}) must be smaller than --lr-max ({self.lr_max})"
            )
        if not (0 <= self.tune_epochs < max(self.epochs, 1)):
            raise ValueError(f"--tune-epochs must be in [0, --epochs), got {self.tune_epochs} "
                             f"with --epochs {self.epochs}")  # fmt: skip
        for name in ("polish_target", "polish_leader_target"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{_flag(name)} must be in [0, 1), got {getattr(self, name)}")
        if self.polish_give_up and not self.polish_target < self.polish_give_up < 1.0:
            raise ValueError(f"--polish-give-up must be 0 or in (--polish-target, 1), got "
                             f"{self.polish_give_up} with --polish-target "
                             f"{self.polish_target}")  # fmt: skip
        for name in ("polish_evaluations", "polish_leader_evaluations", "polish_goal_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{_flag(name)} must be >= 0, got {getattr(self, name)}")
        if self.updates_per_epoch < 1:
            raise ValueError(
                f"--updates-per-epoch must be a positive number, got {self.updates_per_epoch}"
            )
        if not self.study_name.strip():
            raise ValueError("--study-name must not be empty")
        if len(self.study_name) > MAX_STUDY_NAME:
            raise ValueError(f"--study-name must be at most {MAX_STUDY_NAME} characters, "
                             f"got {len(self.study_name)}")  # fmt: skip
        if self.sampler_seed < -1:
            raise ValueError(f"--sampler-seed must be >= 0, or -1 for a fresh stream per "
                             f"process, got {self.sampler_seed}")  # fmt: skip
        for name in ("seed", "train_seed", "val_seed", "test_seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{_flag(name)} must be >= 0, got {getattr(self, name)}")
        # The plan's settings are checked by the L=1 method whichever method runs (they are
        # flags of every sweep); then the chosen method's own. Here, before anything runs.
        for method in dict.fromkeys((registry.get(registry.DEFAULT), self.training_method)):
            try:
                method.make_config(lowest(method.search_space(self.settings)), self.settings)
            except ValueError as exc:
                raise ValueError(_flags_named(str(exc))) from None

    @property
    def training_method(self) -> Method:
        return registry.get(self.method)

    @property
    def grown_at(self) -> int:
        """The T at which a growing prefix is grown: what the stall rule reads as full length."""
        return self.training_method.grown_at(self.samples)

    @property
    def data(self) -> DataConfig:
        return DataConfig(frequencies=FREQUENCIES, samples=self.samples)

    @property
    def settings(self) -> Settings:
        """The flags every trial's config is made from."""
        stall = StallRule(STALL_PATIENCE, STALL_GRAD_NORM, STARTED_BLOCK_MSE)
        rules = {"stall": stall, "stall_check": stall_check}
        names = [f.name for f in dataclasses.fields(Settings) if f.name not in rules]
        return Settings(**{n: getattr(self, n) for n in names}, **rules)

    def identity(self) -> dict[str, object]:
        """What the study's numbers depend on: a resumed study must match it exactly.
        (trials, workers, engine, storage and output choices do not change a trial's numbers.)"""
        d = self.data
        ident: dict[str, object] = {
            "method": self.method,
            "frequencies": list(d.frequencies),
            "sample_rate": d.sample_rate,
            "samples": d.samples,
            "amplitude_range": list(d.amplitude),
            "phase_range": list(d.phase),
        }
        common = ("epochs", "train_seed", "val_seed", "test_seed", "clip", "hidden_size")
        ident.update({name: getattr(self, name) for name in common})
        ident.update(self.training_method.identity(self.settings))
        return ident
