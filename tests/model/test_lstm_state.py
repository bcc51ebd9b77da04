"""The model's state handling: carried within a block, detached each step, reset at a block
start; and the sequence evaluation equals the literal one-sample-at-a-time definition."""

from __future__ import annotations

import numpy as np
import torch

from model.data import DataConfig, make_set
from model.evaluate import evaluate, predict, predict_stepwise
from model.lstm import build_model, detach_state


def test_sequence_evaluation_equals_stepwise() -> None:
    data = make_set(3, DataConfig(samples=120))
    model = build_model(5, 64, seed=0)
    np.testing.assert_allclose(predict(model, data), predict_stepwise(model, data), atol=1e-6)


def test_state_is_carried_within_a_block_and_reset_at_its_start() -> None:
    data = make_set(3, DataConfig(samples=60))
    model = build_model(5, 64, seed=1)
    out = predict(model, data)
    # Carried: the same input at two times gives different outputs because the state differs.
    x = torch.from_numpy(data.inputs[0, :1]).view(1, 1, -1)
    first, state = model(x, model.init_state())
    again, _ = model(x, state)
    assert abs(first.item() - again.item()) > 1e-4
    # Reset: block 2 run alone from a zero state gives exactly what it gave inside the set.
    alone = predict(model, type(data)(data.inputs[2:3], data.targets[2:3], data.mixed, data.seed))
    np.testing.assert_allclose(alone[0], out[2], atol=1e-6)


def test_detached_state_stops_the_gradient_at_the_previous_step() -> None:
    model = build_model(5, 64, seed=2)
    x = torch.randn(1, 1, 5)
    _, state = model(x, model.init_state())
    kept = state
    cut = detach_state(state)
    y_kept, _ = model(x, kept)
    y_cut, _ = model(x, cut)
    assert kept[0].requires_grad and not cut[0].requires_grad
    # Through the kept state the first step's weights get a second gradient contribution.
    g_kept = torch.autograd.grad(y_kept.sum(), model.lstm.weight_ih_l0, retain_graph=True)[0]
    g_cut = torch.autograd.grad(y_cut.sum(), model.lstm.weight_ih_l0)[0]
    assert not torch.allclose(g_kept, g_cut)
    # And with the cut state the gradient is exactly that of one step from a constant state.
    h0 = (cut[0].clone(), cut[1].clone())
    y_ref, _ = model(x, h0)
    g_ref = torch.autograd.grad(y_ref.sum(), model.lstm.weight_ih_l0)[0]
    torch.testing.assert_close(g_cut, g_ref)


def test_predicting_zero_scores_half() -> None:
    data = make_set(1, DataConfig(samples=1000))  # one whole period of 1 Hz
    model = build_model(5, 8, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert abs(evaluate(model, data).mse - 0.5) < 1e-6
