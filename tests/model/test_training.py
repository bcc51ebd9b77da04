"""One training run: reports, stopping rules, checkpoints that continue exactly."""

from __future__ import annotations

import numpy as np
import pytest

from model.checkpoint import CheckpointError
from model.data import DataConfig, make_set
from model.delivered import load_model, save_model
from model.l1.checkpoint import load_state, save_state
from model.l1.config import TrainConfig
from model.l1.training import Training
from model.method import STOP_EARLY, STOP_MAX_EPOCHS


@pytest.fixture(scope="module")
def sets():
    d = DataConfig(samples=40)
    return make_set(1, d), make_set(3, d)


def test_reports_every_epoch_and_stops_at_max_epochs(sets) -> None:
    t = Training.start(TrainConfig(lr=1e-3, epochs=3), *sets)
    reports = list(t.epochs())
    assert [r.epoch for r in reports] == [1, 2, 3]
    assert reports[-1].stop_reason == STOP_MAX_EPOCHS and t.finished
    for r in reports:
        assert r.steps == 160 and r.seconds > 0 and r.lr == 1e-3
        assert 0 < r.grad_norm_mean <= r.grad_norm_max
    # The honest numbers are those of the frozen weights at the end of the epoch.
    assert reports[-1].train_mse == pytest.approx(t.evaluate(sets[0]).mse, abs=1e-12)
    assert reports[-1].val_mse == pytest.approx(t.evaluate(sets[1]).mse, abs=1e-12)


def test_caller_may_stop_between_epochs(sets) -> None:
    t = Training.start(TrainConfig(lr=1e-3, epochs=5), *sets)
    for r in t.epochs():
        if r.epoch == 2:
            break
    assert t.state.epoch == 2 and not t.finished


def test_early_stopping_keeps_the_best_weights(sets) -> None:
    t = Training.start(TrainConfig(lr=3e-2, epochs=30, early_stopping_patience=2), *sets)
    reports = list(t.epochs())
    assert reports[-1].stop_reason == STOP_EARLY and len(reports) < 30
    best = min(reports, key=lambda r: r.val_mse)
    assert t.state.early.best_epoch == best.epoch
    assert t.evaluate(sets[1], t.state.best_weights).mse == pytest.approx(best.val_mse, abs=1e-6)


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_checkpoint_continues_exactly(sets, engine: str, tmp_path) -> None:
    cfg = TrainConfig(lr=1e-3, epochs=4, plateau_patience=0, engine=engine)
    whole = Training.start(cfg, *sets)
    list(whole.epochs())
    cut = Training.start(cfg, *sets)
    cut.run_epoch()
    cut.run_epoch()
    save_state(cut.state, tmp_path / "last.npz")
    resumed = Training(*sets, load_state(tmp_path / "last.npz"))
    list(resumed.epochs())
    assert [r.val_mse for r in resumed.state.history] == [r.val_mse for r in whole.state.history]
    assert [r.lr for r in resumed.state.history] == [r.lr for r in whole.state.history]
    for k, w in whole.state.weights.items():
        np.testing.assert_array_equal(resumed.state.weights[k], w)
        np.testing.assert_array_equal(
            resumed.state.adam.exp_avg_sq[k], whole.state.adam.exp_avg_sq[k]
        )


def test_a_checkpoint_from_one_engine_continues_in_the_other(sets, tmp_path) -> None:
    cfg = TrainConfig(lr=1e-3, epochs=2, engine="reference")
    t = Training.start(cfg, *sets)
    t.run_epoch()
    save_state(t.state, tmp_path / "last.npz")
    t.run_epoch()
    state = load_state(tmp_path / "last.npz")
    from dataclasses import replace

    other = Training(*sets, replace(state, config=replace(state.config, engine="fast")))
    other.run_epoch()
    for k, w in t.state.weights.items():
        np.testing.assert_allclose(other.state.weights[k], w, atol=1e-5, rtol=0)


def test_corrupt_or_missing_checkpoint_is_a_checkpoint_error(tmp_path) -> None:
    bad = tmp_path / "last.npz"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_state(bad)
    with pytest.raises(CheckpointError):
        load_state(tmp_path / "missing.npz")


def test_model_file_round_trips(sets, tmp_path) -> None:
    t = Training.start(TrainConfig(lr=1e-3, epochs=1), *sets)
    t.run_epoch()
    save_model(t.state.weights, t.state.config, {"val_mse": 0.4}, tmp_path / "best.npz")
    weights, cfg, meta = load_model(tmp_path / "best.npz")
    assert cfg == t.state.config and meta == {"val_mse": 0.4}
    for k, w in t.state.weights.items():
        np.testing.assert_array_equal(weights[k], w)
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary file


def test_a_model_file_with_an_option_since_removed_still_loads(sets, tmp_path) -> None:
    from model.checkpoint import atomic_write, group, pack, prefixed, unpack

    t = Training.start(TrainConfig(lr=1e-3, epochs=1), *sets)
    save_model(t.state.weights, t.state.config, {"val_mse": 0.4}, tmp_path / "best.npz")
    arrays, info = unpack(tmp_path / "best.npz")
    info["config"]["glide_scale"] = True  # an option a later version no longer has
    atomic_write(pack(prefixed("weights", group(arrays, "weights")), info), tmp_path / "old.npz")
    _, cfg, meta = load_model(tmp_path / "old.npz")
    assert cfg == t.state.config
    assert meta == {"val_mse": 0.4, "options_no_longer_known": {"glide_scale": True}}
