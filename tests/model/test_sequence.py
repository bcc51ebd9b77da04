"""The compiled loss and gradient (model.sequence) against torch's nn.LSTM and autograd: the
same row error sums and gradient, held to a float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import sequence
from model.clock import batch
from model.clock.config import ClockConfig
from model.lstm import SineLSTM, build_model


def _torch_sums(model: SineLSTM, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor
                ) -> torch.Tensor:  # fmt: skip
    hs, _ = model.lstm(x, model.init_state(x.shape[0]))
    return (m * (model.head(hs).squeeze(-1) - y) ** 2).sum(dim=1)


Grads = dict[str, np.ndarray]


def _loss_and_grads(model: SineLSTM, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor,
                    w: torch.Tensor, compiled: bool) -> tuple[float, Grads]:  # fmt: skip
    sums = sequence.error_sums(model, x, y, m) if compiled else _torch_sums(model, x, y, m)
    loss = (w * sums).sum()  # rows weighted apart, as the balanced loss weighs blocks
    model.zero_grad()
    loss.backward()
    grads = {n: p.grad.double().numpy().copy() for n, p in model.named_parameters()}
    return float(loss.detach()), grads


def _problem(rows: int, steps: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, steps, 5, generator=g)
    y = torch.randn(rows, steps, generator=g)
    m = (torch.rand(rows, steps, generator=g) < 0.8).float()  # a mask with holes
    m[0, -3:] = 0.5  # and weights other than 0 and 1
    return x, y, m, torch.rand(rows, generator=g)


@pytest.mark.parametrize("chunk", [1000, 7])
@pytest.mark.parametrize(("rows", "steps", "hidden"), [(4, 90, 16), (6, 40, 8), (1, 7, 5)])
def test_sums_and_gradient_are_torchs(monkeypatch, chunk: int, rows: int, steps: int,
                                      hidden: int) -> None:  # fmt: skip
    # 6 rows: four through the four-at-a-time product and two one by one; hidden 5: a
    # recurrent matrix whose rows are not a multiple of four; chunks of 7: several, the last
    # one short (or, at 7 steps, exactly one).
    monkeypatch.setattr(sequence, "CHUNK_STEPS", chunk)
    x, y, m, w = _problem(rows, steps, rows * steps)
    model = build_model(5, hidden, seed=3)
    reference = build_model(5, hidden, seed=3).double()
    loss, grads = _loss_and_grads(model, x, y, m, w, compiled=True)
    ref_loss, ref_grads = _loss_and_grads(reference, x.double(), y.double(), m.double(),
                                          w.double(), compiled=False)  # fmt: skip
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    for name, ref in ref_grads.items():
        err = np.linalg.norm(grads[name] - ref) / np.linalg.norm(ref)
        assert err < 1e-5, name
        assert np.any(grads[name] != 0), name


def test_backward_uses_the_weights_of_its_forward_pass() -> None:
    model = build_model(5, 8, seed=1)
    x, y, m, w = _problem(4, 30, 0)
    _, before = _loss_and_grads(model, x, y, m, w, compiled=True)
    loss = (w * sequence.error_sums(model, x, y, m)).sum()
    with torch.no_grad():  # moved between the passes, as an optimiser's step would
        saved = [p.clone() for p in model.parameters()]
        for p in model.parameters():
            p.mul_(3.0)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for p, s in zip(model.parameters(), saved, strict=True):
            p.copy_(s)
    after = {n: p.grad.double().numpy() for n, p in model.named_parameters()}
    for name in before:
        np.testing.assert_allclose(after[name], before[name], rtol=1e-5, atol=1e-9)


def test_two_live_graphs_keep_their_own_numbers() -> None:
    model = build_model(5, 8, seed=4)
    xa, ya, m, w = _problem(4, 25, 1)
    xb, yb, _, _ = _problem(4, 25, 2)
    _, alone = _loss_and_grads(model, xa, ya, m, w, compiled=True)
    loss_a = (w * sequence.error_sums(model, xa, ya, m)).sum()
    loss_b = (w * sequence.error_sums(model, xb, yb, m)).sum()
    model.zero_grad()
    loss_b.backward()
    model.zero_grad()
    loss_a.backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.double().numpy(), alone[name], rtol=1e-6, atol=1e-9)


def test_a_graph_is_backpropagated_once() -> None:
    model = build_model(5, 8, seed=1)
    x, y, m, _ = _problem(4, 10, 3)
    out = sequence.error_sums(model, x, y, m).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="once"):
        out.backward()


def test_error_sums_use_it_where_asked_and_able(monkeypatch) -> None:
    calls: list[int] = []
    real = sequence.error_sums

    def counted(model: SineLSTM, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor
                ) -> torch.Tensor:  # fmt: skip
        calls.append(x.shape[0])
        return real(model, x, y, m)

    monkeypatch.setattr(sequence, "error_sums", counted)
    # Two realisations: rows r * 4 + b read block b's mask.
    x, y = batch.draw_batch(batch.DataConfig(samples=50), 50, 2, batch.noise_rng(0))
    mask = batch.prefix_mask((50, 40, 30, 20), 50)
    model = build_model(5, 8, seed=2)
    compiled = batch.error_sums(model, x, y, mask, compiled=True)
    assert calls == [8]
    by_torch = batch.error_sums(model, x, y, mask, compiled=False)
    assert calls == [8]
    np.testing.assert_allclose(compiled.detach().numpy(), by_torch.detach().numpy(), rtol=1e-5)
    model.double()
    batch.error_sums(model, x.double(), y.double(), mask.double(), compiled=True)
    assert calls == [8]


def test_the_engine_is_checked() -> None:
    with pytest.raises(ValueError, match="polish_engine must be one of compiled, torch"):
        ClockConfig(polish_engine="fast")
