# Copyright (c) mmibs contributors. All rights reserved.
"""The weighted dice loss of Panoptic FCN (``docs/method.md``, release ``panopticfcn/loss.py``).

mmdet's ``DiceLoss`` (``naive_dice=False``) computes ``1 - 2 * sum(p t) / (sum p^2 + sum t^2)``
too, but adds ``eps`` to numerator and denominator and takes no per-mask weight. Panoptic FCN
clamps the denominator instead and weights each (instance, k) mask by its normalised center score,
so the release's form is written here once, as a function plus a thin registered module.

Shape shorthand: M masks, P pixels per mask.
"""
from typing import Optional

from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor, nn

from mmibs.registry import MODELS
from mmibs.utils.checks import check_choice


def weighted_dice_loss(pred: Tensor,
                       target: Tensor,
                       weight: Optional[Tensor] = None,
                       eps: float = 1e-8,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None) -> Tensor:
    """Dice loss per mask, ``1 - 2 sum(p t) / max(sum p^2 + sum t^2, eps)``.

    Args:
        pred (Tensor): Mask probabilities (already activated), shape (M, P).
        target (Tensor): Soft or binary mask targets, shape (M, P).
        weight (Tensor, optional): Weight of each mask, shape (M, ). Defaults to None.
        eps (float): Lower bound of the denominator (the release clamps it rather than adding a
            smoothing term). Defaults to 1e-8.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        avg_factor (float, optional): Divisor of the summed loss when reduction is 'mean'.
            Defaults to None.

    Returns:
        Tensor: The loss, shape (M, ) when reduction is 'none', else a scalar.
    """
    if pred.shape != target.shape or pred.dim() != 2:
        raise ValueError('weighted_dice_loss: pred and target must both have shape (M, P), got '
                         f'{tuple(pred.shape)} and {tuple(target.shape)}')
    target = target.to(pred.dtype)
    denominator = (pred * pred).sum(dim=1) + (target * target).sum(dim=1)
    loss = 1 - 2 * (pred * target).sum(dim=1) / denominator.clamp(min=eps)
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


@MODELS.register_module()
class WeightedDiceLoss(nn.Module):
    """Registered wrapper of :func:`weighted_dice_loss`.

    Panoptic FCN uses it with ``avg_factor`` = number of (instance, level) slots for things (each
    slot's K masks carry weights that sum to 1) and number of (class, level) predictions for stuff.

    Args:
        use_sigmoid (bool): Apply a sigmoid to ``pred`` (mask logits) first. Defaults to True.
        eps (float): Lower bound of the denominator. Defaults to 1e-8.
        reduction (str): 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 eps: float = 1e-8,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        check_choice('WeightedDiceLoss', 'reduction', reduction, ('none', 'mean', 'sum'))
        self.use_sigmoid = use_sigmoid
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Mask logits (or probabilities if ``use_sigmoid`` is False), shape (M, P).
            target (Tensor): Mask targets, shape (M, P).
            weight (Tensor, optional): Per-mask weights, shape (M, ). Defaults to None.
            avg_factor (float, optional): Divisor of the summed loss. Defaults to None.
            reduction_override (str, optional): Overrides ``reduction``. Defaults to None.

        Returns:
            Tensor: The weighted loss.
        """
        reduction = reduction_override if reduction_override else self.reduction
        if self.use_sigmoid:
            pred = pred.sigmoid()
        return self.loss_weight * weighted_dice_loss(
            pred, target, weight, eps=self.eps, reduction=reduction, avg_factor=avg_factor)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(use_sigmoid={self.use_sigmoid}, eps={self.eps}, '
                f'reduction={self.reduction!r}, loss_weight={self.loss_weight})')
