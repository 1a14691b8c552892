# Copyright (c) mmibs contributors. All rights reserved.
import pytest
import torch

from mmibs.models.losses import WeightedDiceLoss, weighted_dice_loss
from mmibs.registry import MODELS


def naive_dice(pred, target, weight, eps=1e-8):
    """Per-mask loops of the release's formula, 1 - 2 sum(pt) / max(sum p^2 + sum t^2, eps)."""
    total = 0.0
    for m in range(pred.shape[0]):
        num = sum(float(p) * float(t) for p, t in zip(pred[m], target[m]))
        den = sum(float(p)**2 for p in pred[m]) + sum(float(t)**2 for t in target[m])
        total += (1 - 2 * num / max(den, eps)) * (1.0 if weight is None else float(weight[m]))
    return total


def test_weighted_dice_matches_naive_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 12, generator=g)
    target = (torch.rand(5, 12, generator=g) > 0.5).float() * torch.rand(5, 12, generator=g)
    weight = torch.rand(5, generator=g)
    loss = MODELS.build(dict(type='WeightedDiceLoss', loss_weight=3.0))
    value = loss(logits, target, weight=weight, avg_factor=2.0)
    expected = 3.0 * naive_dice(logits.sigmoid(), target, weight) / 2.0
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # per-mask values without reduction, without sigmoid
    probs = logits.sigmoid()
    per_mask = weighted_dice_loss(probs, target, reduction='none')
    for m in range(5):
        assert per_mask[m].item() == pytest.approx(
            naive_dice(probs[m:m + 1], target[m:m + 1], None), rel=1e-5)


def test_weighted_dice_edge_cases():
    # perfect prediction -> 0; all-zero prediction and target -> 1 (clamped denominator, no NaN)
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    pred = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    loss = WeightedDiceLoss(use_sigmoid=False, reduction='none')
    assert loss(pred, target).tolist() == [0.0, 1.0]
    # the weight scales each mask; sum reduction
    loss = WeightedDiceLoss(use_sigmoid=False, reduction='sum')
    assert loss(pred, target, weight=torch.tensor([5.0, 0.25])).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match='shape'):
        weighted_dice_loss(pred, target[:1])
    with pytest.raises(ValueError, match='reduction'):
        WeightedDiceLoss(reduction='max')


def test_weighted_dice_gradient_reaches_logits():
    logits = torch.zeros(2, 4, requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    WeightedDiceLoss()(logits, target, avg_factor=2).backward()
    # positives are pushed up, negatives down
    assert (logits.grad[target > 0] < 0).all() and (logits.grad[target == 0] > 0).all()
