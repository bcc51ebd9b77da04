from __future__ import annotations

import random

import pytest
import torch

from model.l1.schedule import EarlyStopping, PlateauSchedule


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("patience", [0, 1, 5])
def test_plateau_matches_torch_reduce_lr_on_plateau(seed: int, patience: int) -> None:
    rng = random.Random(seed)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=patience)
    ours = PlateauSchedule(lr=1e-3, factor=0.5, patience=patience)
    metric = 1.0
    changed = 0
    for _ in range(60):
        metric *= rng.choice([0.9, 1.0, 1.00005, 1.1])  # includes rises inside the threshold
        ref.step(metric)
        before = ours.lr
        ours = ours.step(metric)
        changed += ours.lr != before
        assert ours.lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
    assert changed > 0


def test_early_stopping_counts_epochs_without_a_new_best() -> None:
    es = EarlyStopping(patience=3)
    for epoch, v in enumerate([0.5, 0.4, 0.41, 0.39, 0.40, 0.40, 0.40], start=1):
        es = es.step(epoch, v)
    assert es.best == 0.39 and es.best_epoch == 4 and es.bad_epochs == 3 and es.should_stop
