"""The training-method interface: everything the sweep may ask of a method, and nothing else.

A method (``model.l1``: the plan's one-sample-at-a-time loop; ``model.clock``: fresh noise and
backpropagation over a growing prefix) is one object of a ``Method`` subclass, registered by
name in ``model.registry``. The sweep calls the interface and never asks which method it holds:
what a method has beyond the common epoch report (stages, a growing prefix, restarts) it
declares in the shared vocabulary below, and how its trials read in reports in one
``Reporting``.

Its search space is plain data (``FloatParam``, ``IntParam``, ``ChoiceParam``): ``model`` never
imports Optuna, and ``sweep.space`` turns each parameter into the matching ``suggest_*`` call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from model.data import DataConfig, SignalSet
from model.params import Evaluation, Weights

#: Why a run stopped by itself (the sweep adds its own reasons in ``sweep.records``).
STOP_MAX_EPOCHS = "max_epochs"
STOP_EARLY = "early_stopping"
STOP_NON_FINITE = "non_finite"
STOP_CONVERGED = "converged"
"""A deterministic polish found no further descent: more budget would not pay."""
STOP_TARGET = "target_reached"
"""A polish reached its target MSE: the rest of its budget is saved."""
STOP_BEHIND = "out_of_reach"
"""A polish still far above its target at its goal point, where no recorded run that far
above went on to reach it: the rest of its budget is saved."""


@dataclass(frozen=True)
class EpochReport:
    """What one epoch produced. ``online_loss`` is the mean training loss over the epoch's
    steps, taken while the weights moved: it is not the model's MSE. ``train_mse`` and
    ``val_mse`` are honest: frozen weights over the whole set."""

    epoch: int
    online_loss: float
    train_mse: float
    val_mse: float
    val_per_freq: tuple[float, ...]
    grad_norm_mean: float
    grad_norm_max: float
    lr: float
    seconds: float
    steps: int
    stop_reason: str | None = None


StallCheck = Callable[[Sequence["EpochReport"], int, int], "str | None"]
"""The sweep's stall rule for a method that starts a stalled attempt over by itself: given the
current attempt's grow-epoch reports (oldest first, the latest included), the full block length
and the last epoch of a grow budget, a sentence when the attempt has stalled, else None. The
sweep passes it (``sweep.pruner.stall_check``) so the rule is written once, in
``sweep.rules.stall``, and the trainer restarts exactly where the sweep would stop it."""

LeadCheck = Callable[[float], bool]
"""Whether a run that has met its stage's goal, or spent its budget, leads its study and should
go on: given its honest validation MSE at the epoch it first did (its goal MSE, the same at
every asking). The sweep passes one per trial (``sweep.leaders.lead_check``), so a method
spends a longer budget on the study's most promising run only, without knowing what a study
is. Asked again at every epoch it would stop at: a run overtaken meanwhile stops."""


@dataclass(frozen=True)
class Settings:
    """What the sweep's flags fix for every trial; each method reads the fields it uses.
    (No defaults here: ``sweep.settings.SweepConfig`` holds them, one place for each.)"""

    epochs: int
    """Most epochs per trial."""
    clip: float
    """Gradient-norm clip."""
    hidden_size: int
    """LSTM hidden units (one layer)."""
    seed: int
    """Weight-initialisation seed where the method does not search it."""
    lr_min: float
    """Lower bound of a searched learning rate."""
    lr_max: float
    """Upper bound of a searched learning rate."""
    plateau_factor: float
    """ReduceLROnPlateau factor."""
    plateau_patience: int
    """ReduceLROnPlateau patience (epochs)."""
    early_stopping_patience: int
    """Early-stopping patience (epochs)."""
    engine: str
    """Trainer implementation, where a method has several that compute the same run."""
    updates_per_epoch: int
    """Optimizer updates per reported epoch, where an epoch is not a pass over the data."""
    tune_epochs: int
    """Epochs of a final full-length stage, where a method has one (0: its own share)."""
    polish_evaluations: int
    """Loss+gradient evaluations of a deterministic polish stage, where a method has one."""
    polish_target: float
    """The validation MSE at which that polish stops early (0: it spends its budget)."""
    polish_goal_after: int
    """Evaluations of that polish before polish_target counts (every run compared for the lead
    after the same effort)."""
    polish_give_up: float
    """From polish_goal_after on, that polish stops while its validation MSE is above this
    (0: never)."""
    polish_leader_evaluations: int
    """Most evaluations of that polish for a run that leads its study (``LeadCheck``) once it
    has met polish_target or spent polish_evaluations (0 or less: no run goes on)."""
    polish_leader_target: float
    """The validation MSE at which a leading run's polish stops (0: it spends its budget)."""
    stall: StallRule
    """The values of the sweep's stall rule (recorded in a study's identity)."""
    stall_check: StallCheck
    """The sweep's stall rule itself, for a method that starts a stalled run over by itself
    rather than have the sweep stop it (``Method.start`` and ``resume`` receive it)."""


@dataclass(frozen=True)
class StallRule:
    """The values of the sweep's stall rule (``sweep.rules.divergence`` holds them)."""

    patience: int
    """Grow epochs with T unchanged."""
    grad_norm: float
    """Mean gradient norm under which such an epoch is saturated."""
    started_block_mse: float
    """A grow stage that ends short of full length with a block's honest MSE at or above this
    never started that block's oscillator."""


@dataclass(frozen=True)
class FloatParam:
    name: str
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntParam:
    name: str
    low: int
    high: int


@dataclass(frozen=True)
class ChoiceParam:
    name: str
    choices: tuple[Any, ...]


Param = FloatParam | IntParam | ChoiceParam


class State(Protocol):
    """A checkpointable run: after any epoch it holds everything needed to continue."""

    config: Any
    epoch: int
    weights: Weights
    best_weights: Weights | None
    history: tuple[EpochReport, ...]
    stop_reason: str | None

    @property
    def best_epoch(self) -> int:
        """The epoch whose end gave ``best_weights`` (0: none yet)."""
        ...


class Run(Protocol):
    """A training run in progress; ``state`` after any epoch is a checkpoint."""

    state: State

    @property
    def finished(self) -> bool: ...

    def run_epoch(self) -> EpochReport: ...

    def evaluate(self, data: SignalSet, weights: Weights | None = None) -> Evaluation: ...


# --- Optional per-epoch facts, with one meaning for every method ---
# A method that has one reports it as a field of its ``EpochReport`` subclass and names it in
# ``Method.curves``; the sweep records every named field as a curve, and reads these by these
# names only, so that no method's own vocabulary reaches the sweep (a method may record other
# curves of its own: shown, never read).
VAL_PER_FREQ = "val_per_freq"
"""The honest validation MSE of each frequency block (an ``EpochReport`` field every method
has, recorded as a curve only where named: the stall rule reads it)."""
STAGE = "stage"
"""Which of the method's ``stages`` trained the epoch: the report says which stage gave the
delivered weights, and where the time went."""
PREFIX = "prefix"
"""The length of a growing prefix after the epoch: the sweep's stall rule judges the epochs
that report one and are not ``judged``."""
LEADING = "leading"
"""The run went on after the epoch only because it led its study (``LeadCheck``): it had met
its stage's goal or spent its budget. The report says how much time the leader got."""
ATTEMPT = "attempt"
"""Which attempt (0, then one more per start-over from new initial weights) the epoch
trained."""
RESTARTED = "restarted"
"""The epoch ended its attempt: the method starts over by itself, and the stall rule judges
the new attempt afresh."""
JUDGED = "judged"
"""The plan's rules judge this epoch's honest MSE (where recorded, it replaces
``Method.judged_from``)."""
SHARED_CURVES = (VAL_PER_FREQ, STAGE, PREFIX, ATTEMPT, RESTARTED, JUDGED)


@dataclass(frozen=True)
class Reporting:
    """How a method's trials read in reports: kept apart from training, declared once."""

    axis: str
    """The searched parameter the report's table and sweep plot are keyed by (a column)."""
    axis_title: str
    """That parameter's axis title in the plots."""
    floor_action: str = "another point of the search space; this run learnt nothing"
    """The advice a trial carries when its model is at the predict-zero floor, whichever of
    the plan's rows fired (the plan's own advice is kept beside it)."""
    at_floor_advice: str = ""
    """What a study whose best trial sits at the floor means, and what to do about it."""
    disclosure: str | None = None
    """Said wherever a model trained this way is reported (None: nothing to disclose)."""
    online_loss_is_comparable: bool = True
    """Whether its online loss is a training MSE on the real targets, so that comparing it
    with the honest MSE is worth a warning (the clock's is a prefix MSE on other targets)."""
    stop_actions: Mapping[str, str] = field(default_factory=dict)
    """The advice a trial carries, per reason its run stopped by itself, where that reason
    says more than the plan's row (which is kept beside it): a run the method gave up does not
    want to "continue to convergence"."""


class Method(ABC):
    """One way of training the plan's ``SineLSTM``: the abstract members are required, every
    other member has a default that fits a method without it. A subclass sets ``name``,
    ``config_class`` and ``reporting`` as class attributes (checked when it is defined)."""

    name: str
    """Its registry name, recorded on every study, trial and model file."""
    config_class: type
    """Its frozen config dataclass (with a ``METHOD`` class attribute naming the method)."""
    reporting: Reporting
    curves: tuple[str, ...] = ()
    """Fields of its epoch reports recorded as curves beside ``sweep.records.CURVES``: the
    shared ones above that it has, and any of its own."""
    stages: tuple[str, ...] = ()
    """The stages its epochs' ``STAGE`` names, in the order they run (none: one stage)."""
    default_epochs = 30
    """Most epochs a trial runs unless ``--epochs`` says otherwise: the plan's 30, which fits a
    method without a budget of its own."""
    unordered_space = False
    """Whether nearby values of its searched parameters mean nothing alike (a seed): the sweep
    then proposes each point once, in random order, instead of modelling the objective over
    the space (which would also propose a point twice, training the same run again)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Said when the class is defined, not when a report first asks for its texts.
        missing = [a for a in ("name", "config_class", "reporting") if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"method {cls.__name__} does not set {', '.join(missing)}")

    @property
    def default_study(self) -> str:
        """The study name a sweep of this method uses unless told otherwise."""
        return f"lstm-{self.name}"

    @abstractmethod
    def search_space(self, settings: Settings) -> tuple[Param, ...]: ...

    @abstractmethod
    def make_config(self, params: Mapping[str, Any], settings: Settings) -> Any:
        """The run's frozen config; a ``ValueError`` naming the field for a bad setting."""

    @abstractmethod
    def start(self, config: Any, train: SignalSet, val: SignalSet, data: DataConfig,
              stall_check: StallCheck | None = None, leads: LeadCheck | None = None
              ) -> Run: ...  # fmt: skip

    @abstractmethod
    def resume(self, state: State, train: SignalSet, val: SignalSet, data: DataConfig,
               stall_check: StallCheck | None = None, leads: LeadCheck | None = None
               ) -> Run: ...  # fmt: skip

    @abstractmethod
    def save(self, state: State, path: Path) -> None: ...

    @abstractmethod
    def load(self, path: Path) -> State:
        """A checkpoint of this method; any failure is a ``CheckpointError``."""

    def first_params(self, settings: Settings) -> dict[str, Any] | None:
        """The best measured point of the search space, the first trial of every study (None:
        no point is favoured)."""
        return None

    def identity(self, settings: Settings) -> dict[str, Any]:
        """What a trial's numbers depend on beyond the data and the search space: a resumed
        study must match."""
        return {}

    def grown_at(self, samples: int) -> int:
        """The prefix at which a growing method's grow stage is over: the stall rule calls no
        epoch that reached it stalled, whatever its honest MSE beyond that prefix."""
        return samples

    def judged_from(self, settings: Settings) -> int:
        """The first epoch the plan's divergence rules judge (earlier epochs are a stage whose
        validation MSE is meant to swing), where a method does not record ``JUDGED``."""
        return 0

    def uses_torch(self, settings: Settings) -> bool:
        """Whether its runs need torch (a worker then loads it, and uses one thread)."""
        return False

    def engine(self, config: Any) -> str:
        """Which implementation computes the run (recorded on the trial)."""
        return self.name

    def adopt(self, state: State, config: Any) -> State | None:
        """``state`` ready to continue as a run of ``config``, or None when it was made with
        another configuration."""
        return state if state.config == config else None

    def reopen(self, state: State) -> State | None:
        """A finished run's ``state`` made ready for the study's leader to train on past where
        it stopped, exactly as if the run had gone on then (an unfinished ``state`` as it is);
        None where nothing is left to gain, which for a finished run is the default: a method
        without a leader's budget never goes on."""
        return state if state.stop_reason is None else None

    def warm_up(self, settings: Settings, data: DataConfig) -> None:
        """Compile what its runs compile (or load it from numba's cache) on throwaway tiny
        data: a worker does this before its first trial, so that no epoch's time includes it."""
        return None  # a method that compiles nothing has nothing to warm up

    def describe(self, config: Any) -> str:
        """A few words naming the config's values, for notes and reports."""
        return ", ".join(f"{f.name} {getattr(config, f.name)}" for f in fields(config))

    def progress(self, config: Any, report: EpochReport) -> str:
        """The method's own facts about an epoch for its progress line ("" for none)."""
        return ""

    def step_text(self, report: EpochReport) -> str:
        """The epoch's learning rate for its progress line ("" where the optimizer has none
        a person could read as one)."""
        return f"lr {report.lr:.2e}"

    def delivered_by(self, state: State) -> str:
        """Which stage and optimizer produced the delivered (best) weights, with the budget
        spent there, in a few words ("" where one optimizer trains throughout)."""
        return ""
