"""Optuna's internals that ``sweep.store.optuna_private`` relies on are still there and still
behave
as it expects; nothing else in the project touches a private part of Optuna.

Each failure names what changed. Before widening Optuna's range in requirements.txt, run this
file (and the tests of sweep.store.storage's users) against the new version.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import logging
import re
from pathlib import Path

import optuna
import pytest
from import_contracts import private
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from packaging.requirements import Requirement
from packaging.version import Version

from sweep.store import optuna_private as fence
from sweep.store.optuna_private import StampingStorage

ROOT = Path(__file__).resolve().parents[2]
STAMP = {"stamped": "yes"}


def changed(what: str, now: object, expected: object) -> str:
    return (
        f"Optuna {optuna.__version__} changed {what}: now {now}, "
        f"sweep.store.optuna_private expects {expected}. "
        "Fix the fence against Optuna's source, then the range in requirements.txt."
    )


def test_the_installed_optuna_is_in_the_range_the_suite_has_run_against() -> None:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    (req,) = [Requirement(x) for x in lines if re.match(r"optuna\s*[<>=!~]", x)]
    assert req.specifier.contains(Version(optuna.__version__)), (
        f"Optuna {optuna.__version__} is outside {req}, the range the suite has run against: "
        "run this file against it before widening the range"
    )


def _storage_module():
    return importlib.import_module("optuna.storages._rdb.storage")


def _models():
    return importlib.import_module("optuna.storages._rdb.models")


# (what, how to find it, its parameters as the fence calls it)
SIGNATURES = [
    ("RDBStorage._create_new_trial", lambda: RDBStorage._create_new_trial,
     ["self", "study_id", "template_trial"]),
    ("RDBStorage.set_trial_state_values", lambda: RDBStorage.set_trial_state_values,
     ["self", "trial_id", "state", "values"]),
    ("RDBStorage._set_trial_attr_without_commit",
     lambda: RDBStorage._set_trial_attr_without_commit,
     ["self", "session", "model_cls", "trial_id", "key", "value"]),
    ("RDBStorage.check_trial_is_updatable", lambda: RDBStorage.check_trial_is_updatable,
     ["self", "trial_id", "trial_state"]),
    ("optuna.storages._rdb.storage._create_scoped_session",
     lambda: _storage_module()._create_scoped_session,
     ["scoped_session", "ignore_integrity_error"]),
    ("optuna.storages._rdb.models.TrialModel.find_or_raise_by_id",
     lambda: _models().TrialModel.find_or_raise_by_id, ["trial_id", "session", "for_update"]),
]  # fmt: skip


@pytest.mark.parametrize(("what", "find", "params"), SIGNATURES, ids=[s[0] for s in SIGNATURES])
def test_each_private_callable_keeps_its_parameters(what: str, find, params: list[str]) -> None:
    try:
        found = find()
    except (ImportError, AttributeError) as exc:
        pytest.fail(changed(what, f"gone ({exc})", "it to exist"))
    now = list(inspect.signature(found).parameters)
    assert now == params, changed(f"the parameters of {what}", now, params)


@pytest.mark.parametrize("name", ["BaseModel", "TrialModel", "TrialUserAttributeModel"])
def test_the_table_models_the_fence_uses_exist(name: str) -> None:
    assert hasattr(_models(), name), changed(f"optuna.storages._rdb.models.{name}", "gone", name)


#: Optuna's tables as of 4.9-5.1; sweep.store.creation tells a half-made database by them.
TABLES = {
    "studies", "study_directions", "study_system_attributes", "study_user_attributes",
    "trial_heartbeats", "trial_intermediate_values", "trial_params", "trial_system_attributes",
    "trial_user_attributes", "trial_values", "trials", "version_info",
}  # fmt: skip


def test_optunas_tables_are_the_ones_the_database_check_was_written_for() -> None:
    now = fence.optuna_tables()
    assert now == TABLES, changed(
        "its tables", f"+{sorted(now - TABLES)} -{sorted(TABLES - now)}", "none added or removed"
    )


#: sha1 of the source of RDBStorage.set_trial_state_values, whose claim of a WAITING trial
#: StampingStorage.set_trial_state_values repeats step by step (the same in Optuna 4.9-5.1).
CLAIM_SOURCE_SHA1 = {"5f2650d71e8b613fa49e526a4dac1d19dea7fc28"}


def test_optunas_claim_of_a_waiting_trial_is_the_one_the_fence_repeats() -> None:
    source = inspect.getsource(RDBStorage.set_trial_state_values)
    sha1 = hashlib.sha1(source.encode()).hexdigest()
    assert sha1 in CLAIM_SOURCE_SHA1, changed(
        "RDBStorage.set_trial_state_values, whose steps the fence repeats to claim a WAITING "
        f"trial (source sha1 {sha1}; compare it with StampingStorage's and add the hash)",
        f"\n{source}",
        "the source it was written against",
    )


def test_the_backend_calls_optuna_makes_by_private_name_are_the_ones_the_fence_lists() -> None:
    # sweep.store.reconnect retries every call that reaches the database: one Optuna's trial
    # cache makes by a private name the list lacks would fail at once when the server restarts.
    source = inspect.getsource(importlib.import_module("optuna.storages._cached_storage"))
    called = set(re.findall(r"self\._backend\.(_\w+)\(", source))
    listed = set(fence.BACKEND_CALLS_BY_PRIVATE_NAME)
    assert called == listed, changed(
        "the backend methods its trial cache calls by private names",
        f"+{sorted(called - listed)} -{sorted(listed - called)}", sorted(listed)
    )  # fmt: skip


class Stamped(StampingStorage):
    def stamp(self) -> dict[str, str]:
        return dict(STAMP)


def _study(tmp_path: Path) -> tuple[optuna.Study, StampingStorage]:
    storage = Stamped(f"sqlite:///{tmp_path / 's.db'}")
    return optuna.create_study(study_name="s", storage=storage), storage


def stored(storage: RDBStorage, number: int) -> optuna.trial.FrozenTrial:
    """Trial ``number`` of study "s" as the database holds it (not as a study's cache does)."""
    return storage.get_all_trials(storage.get_study_id_from_name("s"))[number]


def test_a_trial_asked_for_carries_the_stamp_from_its_first_moment(tmp_path: Path) -> None:
    study, storage = _study(tmp_path)
    try:
        trial = study.ask()  # nothing else writes an attribute before the objective runs
        frozen = stored(storage, trial.number)
        assert frozen.state == TrialState.RUNNING
        assert frozen.user_attrs == STAMP, changed(
            "how ask() makes a trial (the trial cache no longer calls the backend's "
            "_create_new_trial)",
            frozen.user_attrs,
            STAMP,
        )
    finally:
        storage.engine.dispose()


def test_a_claimed_waiting_trial_is_stamped_and_otherwise_as_optuna_claims_it(
    tmp_path: Path,
) -> None:
    study, storage = _study(tmp_path)
    plain = RDBStorage(f"sqlite:///{tmp_path / 'plain.db'}")
    other = optuna.create_study(study_name="s", storage=plain)
    try:
        claimed = []
        for s, s_storage in ((study, storage), (other, plain)):
            s.enqueue_trial({"x": 1.0}, user_attrs={"queued": 1})
            claimed.append(stored(s_storage, s.ask().number))
        ours, optunas = claimed
        assert ours.user_attrs == {"queued": 1, **STAMP}
        assert optunas.user_attrs == {"queued": 1}
        for field in ("state", "params", "system_attrs", "intermediate_values", "values"):
            assert getattr(ours, field) == getattr(optunas, field), changed(
                f"a claimed trial's {field}", getattr(optunas, field), getattr(ours, field)
            )
        assert ours.datetime_start is not None and ours.datetime_complete is None
        # A second claim of the same trial is refused, as Optuna refuses it.
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name("s"), ours.number
        )
        assert storage.set_trial_state_values(trial_id, TrialState.RUNNING) is False
    finally:
        storage.engine.dispose()
        plain.engine.dispose()


def test_a_system_attribute_set_through_the_fence_is_stored_and_seen_by_trial_and_pruner(
    tmp_path: Path,
) -> None:
    # The per-epoch curves go this way (sweep.objective): optuna-dashboard does not draw them.
    handed: list[object] = []

    class Spy(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            handed.append(trial.system_attrs.get("k"))
            return False

    storage = RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="s", storage=storage, pruner=Spy())
    try:
        trial = study.ask()
        fence.set_trial_system_attr(trial, "k", {"a": [1, 2]})
        held = stored(storage, trial.number)
        assert held.system_attrs.get("k") == {"a": [1, 2]}, changed(
            "where set_trial_system_attr writes (not the trial's system attributes)",
            held.system_attrs, {"k": {"a": [1, 2]}}
        )  # fmt: skip
        assert "k" not in held.user_attrs and "k" not in trial.user_attrs
        view = fence.frozen(trial)
        assert (view.number, view.system_attrs.get("k")) == (trial.number, {"a": [1, 2]}), changed(
            "a Trial's cached FrozenTrial (Trial._cached_frozen_trial)",
            (view.number, view.system_attrs), (trial.number, {"k": {"a": [1, 2]}})
        )  # fmt: skip
        view.system_attrs["k"]["a"].append(3)  # a copy: the trial's own view is untouched
        assert fence.frozen(trial).system_attrs["k"] == {"a": [1, 2]}
        trial.report(0.5, 1)
        trial.should_prune()
        assert handed == [{"a": [1, 2]}], changed(
            "the system attributes of the FrozenTrial should_prune() hands the pruner",
            handed, [{"a": [1, 2]}]
        )  # fmt: skip
    finally:
        storage.engine.dispose()


def test_failed_trials_are_still_logged_by_the_logger_the_runner_filters() -> None:
    seen: list[str] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return False  # silenced, as the runner's filter silences expected failures

    def objective(trial: optuna.Trial) -> float:
        raise ValueError("expected")

    logger = logging.getLogger(fence.OPTIMIZE_LOGGER)
    logger.addFilter(keep)
    try:
        optuna.create_study().optimize(objective, n_trials=1, catch=(ValueError,))
    finally:
        logger.removeFilter(keep)
    assert any("failed with" in m for m in seen), changed(
        f"where failed trials are logged (nothing on the logger {fence.OPTIMIZE_LOGGER!r})",
        seen, "a 'Trial 0 failed with ...' record"
    )  # fmt: skip


# --- nothing outside the fence touches Optuna's private parts --------------------------------

#: Private names of Optuna objects this project once reached for (or might): an attribute of
#: one of these names anywhere but in the fence is a private call in disguise.
PRIVATE_ATTRIBUTES = {
    "_storage", "_study_id", "_trial_id", "_backend", "_cached_frozen_trial",
    "_create_new_trial", "_set_trial_attr_without_commit", "_create_scoped_session",
    "_version_manager",
}  # fmt: skip
FENCE = ROOT / "sweep" / "store" / "optuna_private.py"


def _optuna_private(dotted: str) -> bool:
    return dotted.split(".")[0] in ("optuna", "optuna_dashboard") and private(dotted)


def _project_files() -> list[Path]:
    files = [ROOT / "study.py"]
    for folder in ("sweep", "model", "bench", "tests"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f not in (FENCE, Path(__file__).resolve())]


def private_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each private Optuna use in ``tree``: an attribute of one of the names
    above (``x._storage``, ``getattr(x, "_backend")``), an import of a private module or name
    (the contract sees these in sweep/, model/ and bench/, this also in tests/ and study.py),
    or a private module named in a call (``getLogger("optuna.study._optimize")``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRIBUTES:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "level", 0) == 0:
            module = getattr(node, "module", None)
            names = [f"{module}.{a.name}" if module else a.name for a in node.names]
            found += [(node.lineno, f"import {n}") for n in names if _optuna_private(n)]
        elif isinstance(node, ast.Call):
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if arg.value in PRIVATE_ATTRIBUTES or _optuna_private(arg.value):
                        found.append((node.lineno, repr(arg.value)))
    return found


def test_no_module_but_the_fence_uses_a_private_part_of_optuna() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in _project_files()
        for line, what in private_uses(ast.parse(path.read_text(), str(path)))
    ]
    assert not found, "private Optuna use outside sweep/store/optuna_private.py:\n" + "\n".join(
        found
    )


@pytest.mark.parametrize(
    "line",
    [
        "study._storage.get_study_system_attrs(study._study_id)",
        "getattr(study._storage, '_backend', None)",
        "from optuna_dashboard._note import get_note",
        "import optuna.storages._rdb.models",
        "logging.getLogger('optuna.study._optimize')",
    ],
)
def test_the_scan_finds_a_planted_private_use(line: str) -> None:
    assert private_uses(ast.parse(line)), line
