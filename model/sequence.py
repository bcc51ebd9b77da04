"""The clock's loss and its exact gradient over whole sequences, compiled.

Every clock update (grow, tune, polish) is one loss+gradient evaluation: each row's squared
error, summed over the steps a mask keeps, of the LSTM and its linear head run from zero
states over sequences of up to 10,000 steps. torch runs the LSTM's forward pass fast (oneDNN),
but its backward pass at batch 4 is slow: ~200 ms a full-length evaluation, nearly all of a
clock sweep's CPU. Here both passes are numba loops over the steps with
``model.kernels.gate_product``; the weight gradients that need no recurrence are matrix
products over a chunk's steps (bench/results/sequence.md measures both engines).

Memory is kept to a chunk (``CHUNK_STEPS``): the forward pass keeps only the state at each
chunk's start, and the backward pass runs each chunk's steps again, keeping that chunk's gates,
then goes back through them (as ``model.clock.batch``'s checkpointed torch pass does). A
clock worker's peak stays near what torch's chunked pass costs, though numba itself adds
~120 MB (bench/results/memory.md).

``error_sums`` is a ``torch.autograd.Function``, so the optimisers and the loss built on the
sums are unchanged. The arithmetic is float32 like torch's, but sigmoid and tanh are
``model.vecmath``'s and sums run in another order, so results differ from torch's in the last
bits (tests/model/test_sequence.py holds both to a float64 reference). The compiled loops are
in ``model.sequence_kernels``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from model.sequence_kernels import back, steps

#: Steps per chunk: the backward pass keeps one chunk's gates (4 MB at 4 rows, hidden 64).
CHUNK_STEPS = 1000


class _Workspace:
    """One buffer for a chunk's kept arrays, reused by every backward pass: fresh arrays
    each time left the heap holding a block per sequence length (``model.clock.memory`` keeps
    freed memory in the process)."""

    def __init__(self) -> None:
        self._buffer = np.empty(0, np.float32)

    def arrays(self, shapes: tuple[tuple[int, ...], ...]) -> list[np.ndarray]:
        sizes = [math.prod(shape) for shape in shapes]
        if self._buffer.size < sum(sizes):
            self._buffer = np.empty(sum(sizes), np.float32)
        arrays, start = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            arrays.append(self._buffer[start : start + size].reshape(shape))
            start += size
        return arrays


_WORKSPACE = _Workspace()
_NOTHING = np.empty((0, 0, 0), np.float32)


def _chunk_arrays(n_rows: int, n: int, n_in: int, hid: int, fresh: bool) -> list[np.ndarray]:
    """err, acts, zs, cs, hs of a chunk of n steps: the workspace's, or (for a chunk a live
    graph keeps) fresh ones."""
    shapes = ((n_rows, n), (n_rows, n, 4 * hid), (n_rows, n, n_in + hid + 1), (n_rows, n, hid),
              (n_rows, n, hid))  # fmt: skip
    if fresh:
        return [np.empty(shape, np.float32) for shape in shapes]
    return _WORKSPACE.arrays(shapes)


def _state(n_rows: int, n_in: int, hid: int) -> tuple[np.ndarray, np.ndarray]:
    """z = [x, h, 1] and c at t = 0: zero states."""
    z = np.zeros((n_rows, n_in + hid + 1), np.float32)
    z[:, n_in + hid] = 1.0
    return z, np.zeros((n_rows, hid), np.float32)


def _part(a: np.ndarray, start: int, end: int) -> np.ndarray:
    """Steps start..end of every row, contiguous: the loops are compiled for C-contiguous
    arrays only (``sequence_kernels.warm_up``), and a chunk is small to copy."""
    return np.ascontiguousarray(a[:, start:end])


def _chunks(n_steps: int) -> list[tuple[int, int]]:
    return [(s, min(s + CHUNK_STEPS, n_steps)) for s in range(0, n_steps, CHUNK_STEPS)]


class _ErrorSums(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, m, w_ih, w_hh, b_ih, b_hh, w_out, b_out):  # type: ignore[override]
        n_rows, n_steps, n_in = x.shape
        hid = w_hh.shape[1]
        w_rows = torch.cat([w_ih.t(), w_hh.t(), (b_ih + b_hh)[None]]).contiguous().numpy()
        w_head = w_out.detach().reshape(-1).numpy().copy()
        head_b = np.float32(float(b_out.detach().reshape(-1)[0]))
        xs, ys, ms = x.numpy(), y.numpy(), m.numpy()
        z, c = _state(n_rows, n_in, hid)
        sums = np.zeros(n_rows)
        starts = []  # the state at each chunk's start: all the backward pass needs
        chunks = _chunks(n_steps)
        for s, e in chunks:
            starts.append((z.copy(), c.copy()))
            # The last chunk, the backward pass's first, is kept rather than run again
            # (a sequence of one chunk then runs once).
            kept = _chunk_arrays(n_rows, e - s, n_in, hid, fresh=True) if e == n_steps else None
            err, acts, zs, cs, hs = kept or (np.empty((n_rows, e - s), np.float32),
                                             *(_NOTHING,) * 4)  # fmt: skip
            x_c, y_c, m_c = _part(xs, s, e), _part(ys, s, e), _part(ms, s, e)
            steps(x_c, y_c, m_c, w_rows, w_head, head_b, z, c, err,
                   acts, zs, cs, hs, kept is not None)  # fmt: skip
            sums += (m_c * err.astype(np.float64) ** 2).sum(axis=1)
        # Copies of the weights: the backward pass must see those this pass ran with.
        ctx.kept = (xs, ys, ms, w_rows, w_head, head_b, starts, kept)
        ctx.w_hh = np.ascontiguousarray(w_hh.detach().numpy()).copy()
        return torch.from_numpy(sums.astype(np.float32))

    @staticmethod
    def backward(ctx, d_sums):  # type: ignore[override]
        if ctx.kept is None:
            raise RuntimeError("error_sums' graph can be backpropagated once")
        xs, ys, ms, w_rows, w_head, head_b, starts, last = ctx.kept
        ctx.kept = None
        n_rows, n_steps, n_in = xs.shape
        g4 = w_rows.shape[1]
        hid = g4 // 4
        g = np.ascontiguousarray(d_sums.numpy(), dtype=np.float32)
        dh_next = np.zeros((n_rows, hid), np.float32)
        dc_next = np.zeros((n_rows, hid), np.float32)
        d_out = np.zeros(hid + 1, np.float32)
        d_rows = torch.zeros(w_rows.shape)
        for (s, e), (z0, c0) in zip(reversed(_chunks(n_steps)), reversed(starts), strict=True):
            x_c, y_c, m_c = _part(xs, s, e), _part(ys, s, e), _part(ms, s, e)
            if last is not None:
                err, acts, zs, cs, hs = last
                last = None
            else:
                err, acts, zs, cs, hs = _chunk_arrays(n_rows, e - s, n_in, hid, fresh=False)
                steps(x_c, y_c, m_c, w_rows, w_head, head_b, z0.copy(), c0.copy(), err, acts,
                      zs, cs, hs, True)  # fmt: skip
            back(acts, cs, c0, hs, err, m_c, g, w_head, ctx.w_hh, dh_next, dc_next, d_out)
            dg, zt = torch.from_numpy(acts), torch.from_numpy(zs)
            for r in range(n_rows):  # d(z @ w_rows), each row's steps contiguous
                d_rows.addmm_(zt[r].t(), dg[r])
        d_b = d_rows[n_in + hid]
        d_head = torch.from_numpy(d_out)
        return (None, None, None, d_rows[:n_in].t(), d_rows[n_in : n_in + hid].t(), d_b,
                d_b.clone(), d_head[:hid].reshape(1, hid), d_head[hid:].clone())  # fmt: skip


def supported(model: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether ``error_sums`` computes this: one float32 LSTM layer and a linear head on the
    CPU (``model.lstm.SineLSTM``), and no gradient wanted for the inputs."""
    lstm, w = model.lstm, model.lstm.weight_hh_l0
    return (lstm.num_layers == 1 and lstm.batch_first and not lstm.bidirectional
            and lstm.proj_size == 0 and lstm.bias and w.dtype == torch.float32
            and x.dtype == torch.float32 and w.device.type == "cpu"
            and not x.requires_grad)  # fmt: skip


def error_sums(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
               ) -> torch.Tensor:  # fmt: skip
    """(R,): each row's sum over t of mask * (output - y)^2, the model run over x (R, T, n_in)
    from zero states; mask (R, T) (``model.clock.batch.row_error_sums`` with one mask row per
    row)."""
    lstm, head = model.lstm, model.head
    return _ErrorSums.apply(x.detach().contiguous(), y.detach().contiguous(),
                            mask.detach().contiguous(), lstm.weight_ih_l0, lstm.weight_hh_l0,
                            lstm.bias_ih_l0, lstm.bias_hh_l0, head.weight, head.bias)  # fmt: skip
