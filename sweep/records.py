"""What a trial and a study record, in one place: every attribute key, curve, checkpoint file
and stop reason. Readers and writers import these names; no key is spelled twice.

Who writes what: ``sweep.objective`` (a trial's settings and curves), ``sweep.trial_record``
(what a trial delivered: its final numbers and its verdict, the one writer and reader of those
keys), ``sweep.store.recovery`` (the line of a cut-off trial), ``sweep.identity`` (the study's
settings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Re-exported: the methods' stop reasons, and the per-epoch curves any method may record (the
# interface defines them, so a method names them without importing the sweep).
from model.method import (  # noqa: F401
    ATTEMPT,
    JUDGED,
    LEADING,
    PREFIX,
    RESTARTED,
    STAGE,
    STOP_BEHIND,
    STOP_CONVERGED,
    STOP_EARLY,
    STOP_MAX_EPOCHS,
    STOP_NON_FINITE,
    VAL_PER_FREQ,
)
from sweep.paths import study_folder

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

# --- Study attributes (sweep.identity) ---
STUDY_CONFIG = "config"
"""The settings a study's numbers depend on (``SweepConfig.identity()``), as a dict."""
STUDY_OBJECTIVE = "objective"
"""What the objective value is, in words."""
OBJECTIVE_TEXT = "honest validation MSE of the best checkpoint"
METRIC_NAME = "honest validation MSE"
"""The objective's name where optuna-dashboard plots it."""

# --- Trial attributes: who runs it (sweep.objective, sweep.store.liveness) ---
WORKER = "worker"
"""host:pid:start-time of the process running the trial; written first of all."""
METHOD = "method"
"""The training method's registry name."""
CHECKPOINT = "checkpoint"
"""Path of the trial's last.npz (its state after its last completed epoch)."""

# --- Trial attributes: the line of a cut-off trial (sweep.store.recovery) ---
CONTINUES_TRIAL = "continues_trial"
"""Number of the cut-off trial this one continues."""
CONTINUES_CHECKPOINT = "continues_checkpoint"
"""The newest checkpoint of that line."""
FALLBACK_CHECKPOINTS = "fallback_checkpoints"
"""Older checkpoints of the line, newest first."""
CONTINUED_FROM = "continued_from"
"""Set once the trial really continued from a checkpoint (not restarted from scratch)."""

# --- Trial attributes: the delivered record (sweep.trial_record, which says where each goes) ---
VERDICT = "verdict"
VERDICT_EPOCH = "verdict_epoch"
ACTION = "action"
"""The tool's advice: the plan's row, except at the floor, where the data is the cause, and
where the method stopped the run for a reason of its own (``Reporting.stop_actions``)."""
PLAN_ACTION = "plan_action"
"""What the plan's Decision Matrix says for the verdict, kept beside the tool's advice."""
VERDICT_REASON = "verdict_reason"
TRAIN_MSE = "train_mse"
VAL_MSE = "val_mse"
TEST_MSE = "test_mse"
TEST_TRAIN_RATIO = "test_train_ratio"
TEST_MSE_PER_FREQ = "test_mse_per_freq"
"""Studies recorded before only: the test MSE per frequency as one dict {"3Hz": mse, ...}, a
line too long for the dashboard; kept now one frequency a key (``per_freq_key``)."""
TIER = "tier"
AT_FLOOR = "at_floor"
EPOCHS = "epochs"
BEST_EPOCH = "best_epoch"
STOP_REASON = "stop_reason"
FINAL_ONLINE_LOSS = "final_online_loss"
WALL_SECONDS = "wall_seconds"
PEAK_RSS_MB = "peak_rss_mb"
BEST_CHECKPOINT = "best_checkpoint"
ENGINE = "engine"
VALUE_STEP = "value_step"
"""A pruned trial only: the step, one past its last epoch, at which it reports its delivered
validation MSE. Optuna takes a pruned trial's value from its last intermediate value (its last
epoch's, often a restarted attempt's); reported there, the value that the dashboard's history
and ``optuna best-trial`` show is the number the report and the note give. Not an epoch:
readers of the per-epoch curves skip it."""
_HZ = "Hz"


def per_freq_key(freq: float) -> str:
    """The key of one frequency's test MSE: "test_mse_3Hz"."""
    return f"{TEST_MSE}_{freq:g}{_HZ}"


def freq_of_key(key: str, prefix: str = f"{TEST_MSE}_") -> float | None:
    """The frequency a per-frequency key names ("test_mse_3Hz", or with ``prefix=""`` a key of
    the old dict, "3Hz"); None for any other key."""
    if not (key.startswith(prefix) and key.endswith(_HZ)):
        return None
    try:
        return float(key[len(prefix) : -len(_HZ)])
    except ValueError:
        return None


# --- Trial attributes: the polish's lead (sweep.leaders) ---
GOAL_MSE = "goal_mse"
"""A run asked whether it leads its study (``sweep.leaders``): its honest validation MSE at the
first polish epoch past its goal, by which runs are compared for the longer polish."""
LEADS_ON = "leads_on"
"""Number of the finished trial whose polish this one goes on with, as the study's leader
(``sweep.leaders``): one run in two trials. It is no new run, so it counts for no place in
``--trials``; once it is complete, that trial's row is the run's and the other's is
``CONTINUED`` in reports. Its copies after a cut-off inherit it."""

# --- Per-epoch curves: one attribute holding {report field: one value per epoch} ---
CURVES_KEY = "curves"
"""Written once per epoch as a trial *system* attribute: one storage write (not one per curve),
and none of the dashboard's user attributes, which it draws each on one unwrapped line (a
curves line thousands of characters long made the trial pane wider than the window and ran
the note off its right edge). Studies recorded before hold it as a user attribute."""
ONLINE_LOSS = "online_loss"
VAL_MSE_CURVE = "val_mse"
GRAD_NORM_MEAN = "grad_norm_mean"
SECONDS = "seconds"
CURVES = (ONLINE_LOSS, "train_mse", VAL_MSE_CURVE, GRAD_NORM_MEAN, "grad_norm_max", "lr",
          SECONDS)  # fmt: skip
"""Every method's curves: fields of ``model.method.EpochReport``. Beside them a method records
those it names in ``Method.curves``; of those, the sweep reads only the shared ones
(``VAL_PER_FREQ``, ``STAGE``, ``PREFIX``, ``ATTEMPT``, ``RESTARTED``, ``JUDGED``, ``LEADING``,
re-exported above from ``model.method``, where their meaning is given)."""


def curves(trial: FrozenTrial) -> Mapping[str, Any]:
    """Every recorded curve of a trial, {name: one value per epoch}: its system attribute, or
    in a study recorded before the curves moved there, its user attribute (empty when none).
    The one reader of where the curves are kept; a running ``optuna.Trial`` is read through
    ``sweep.store.optuna_private.frozen``."""
    return trial.system_attrs.get(CURVES_KEY) or trial.user_attrs.get(CURVES_KEY) or {}


def curve(trial: FrozenTrial, name: str) -> list:
    """One recorded curve of a trial (empty when not recorded)."""
    return list(curves(trial).get(name) or [])


# --- Stop reasons the sweep adds to the methods' own ---
STOP_PRUNED = "pruned"
STOP_OWNER_DIED = "owner_died"
"""The trial's process was gone (killed from outside): continued, never counted against it."""
STOP_INTERRUPTED = "interrupted"
"""Ctrl-C or SIGTERM: continued on the next run."""
STOP_CRASHED = "crashed"
"""The trial's own process crashed (a fatal signal the runner saw): counts against the trial."""
STOP_CHECKPOINT_WRITE = "checkpoint_write_failed"
"""A checkpoint could not be written (disk full, read-only, ...): the sweep stops; continued."""
STOP_DUPLICATE = "duplicate"
"""A second copy of the same cut-off trial (two workers recovered it at once): not run."""
STOP_SURPLUS = "surplus"
"""The study already held or was running the trials asked for: not run."""

# --- Checkpoint layout: <root>/<study>/trial-NNNN/{last,best}.npz ---
LAST = "last.npz"
"""The state after the last completed epoch."""
BEST = "best.npz"
"""The model the trial delivers (its best epoch by validation MSE)."""


def trial_folder(root: Path, study_name: str, number: int) -> Path:
    return study_folder(root, study_name) / f"trial-{number:04d}"


def relocated(path: Path, root: Path) -> Path:
    """The same <study>/trial-NNNN/<file> under another checkpoint root (a database moved with
    its checkpoints, or a command run from another folder)."""
    return root.joinpath(*path.parts[-3:])


def num(x: float) -> float | None:
    """JSON (and so Optuna's user attributes) has no NaN or Inf: store them as null."""
    return x if math.isfinite(x) else None
