"""A third method touches its own package and one registry line, nothing else (issue 21): a
toy method (``tests/toy_method``, numpy only) registered by one line runs through the real
sweep (objective, pruner, delivery, notes, the text and JSON reports), and the sweep names
no method's own vocabulary."""

from __future__ import annotations

import ast
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from model import registry
from model.delivered import load_model
from model.method import SHARED_CURVES, Method
from sweep import records as rec
from sweep.report.summary import collect
from sweep.report.text import render_text, to_json
from sweep.runner import run_sweep
from sweep.settings import SweepConfig
from sweep.trial_record import read as read_record

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one line a third method adds to model/registry.py. Workers=1 runs in this process,
    # so the patch is seen everywhere (no back door in the production code).
    monkeypatch.setitem(registry.PACKAGES, "toy", "toy_method")


def test_a_toy_method_runs_through_the_real_sweep(toy: None, tmp_path: Path) -> None:
    import toy_method.method as tm

    config = SweepConfig(method="toy", trials=2, workers=1, samples=1000, epochs=6,
                         sampler_seed=1, storage=f"sqlite:///{tmp_path}/s.db",
                         checkpoint_dir=str(tmp_path / "ck"))  # fmt: skip
    lines: list[str] = []
    study = run_sweep(config, log=lines.append)
    assert study.study_name == "lstm-toy"  # the base class's default name
    healthy, jumped = sorted(study.trials, key=lambda t: t.params["step"])
    # Its settle stage jumps at epoch 2 (loss 0.5 to 1.5); the trial records that the plan's
    # rules judge only its fit stage, so the sweep lets it finish (read JUDGED, or it fails).
    delivered, overshot = read_record(healthy), read_record(jumped)
    assert healthy.state == TrialState.COMPLETE and delivered.verdict == "healthy"
    assert delivered.at_floor
    assert delivered.action == tm.ToyMethod.reporting.floor_action
    assert delivered.engine == "toy"  # the base class's default engine
    # The too-long step overshoots: the pruner stops it at its second fit epoch.
    assert jumped.state == TrialState.PRUNED
    assert (overshot.verdict, overshot.verdict_epoch) == ("jump", 4)
    # Every declared curve is recorded, its own one too; its progress text is printed.
    curves = rec.curves(healthy)
    assert curves["stage"] == ["settle"] * 2 + ["fit"] * 4
    assert curves["bias"] == [0.0, 1.0, 0.5, 0.25, 0.125, 0.0625]
    assert any("epoch 3/6" in line and "toy bias 0.500" in line for line in lines)
    # The delivered model: its config is the toy's, found through the registry.
    weights, model_config, meta = load_model(Path(delivered.best_checkpoint))
    assert model_config == tm.ToyConfig(step=0.5) and meta["epoch"] == 6
    assert weights["head.bias"][0] == 0.0625

    summary = collect(optuna.load_study(study_name=study.study_name, storage=config.storage))
    text = render_text(summary)
    assert text.splitlines()[2].split()[2] == "step"  # its axis names the column
    assert "  from" in text.splitlines()[2]  # it has stages: which one delivered
    assert "5.00e-01" in text and "  fit" in text and "delivered by its fit stage" in text
    assert tm.DISCLOSURE in text and tm.ToyMethod.reporting.at_floor_advice in text
    report = to_json(summary)
    assert report["method"] == "toy"
    assert [s[0] for s in report["outcomes"]["stages"]] == ["settle", "fit"]
    assert report["best"]["delivered_stage"] == "fit"


def test_the_sweep_names_no_methods_own_vocabulary(toy: None) -> None:
    """No string in sweep/ or study.py is a method's name, one of its stages, or a curve of
    its own: what a method has, the sweep reads from its declarations or the shared names."""
    own: set[str] = set()
    for name in registry.names():
        method = registry.get(name)
        own |= {name, *method.stages, *(set(method.curves) - set(SHARED_CURVES))}
    assert {"toy", "settle", "fit", "bias", "clock", "grow", "tune", "polish"} <= own
    found = []
    for path in [*sorted((ROOT / "sweep").rglob("*.py")), ROOT / "study.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in own:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not found, found


def test_a_method_must_name_itself_its_config_and_its_reporting() -> None:
    with pytest.raises(TypeError, match="does not set config_class, reporting"):

        class Unnamed(Method):
            name = "unnamed"
