# Copyright (c) mmibs contributors. All rights reserved.
"""Focal-to-zero loss of partner masks at uncertainty-sampled points (Mask2Former + IBS).

The points are chosen on the IBS logits themselves, as the released Mask2Former-IBS does
(``mask2former/modeling/criterion.py``, ``SetCriterion.loss_masks``), with Mask2Former's
importance sampling: mmdet's ``get_uncertain_point_coords_with_randomness`` (uncertainty
``-|logit|``) and mmcv's ``point_sample``.

Shape shorthand: N embeddings, C channels, H x W mask-feature size, P sampled points, n rows of
one block.
"""
import torch
from mmcv.ops import point_sample
from mmdet.models.utils import get_uncertain_point_coords_with_randomness
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .focal_to_zero import focal_loss_to_zero


def _focal_to_zero_at_points(logits: Tensor, point_coords: Tensor, alpha: float,
                             gamma: float) -> Tensor:
    """Mean over given points of the focal-to-zero loss of logit maps.

    Args:
        logits (Tensor): Logit maps, shape (n, H, W).
        point_coords (Tensor): Points in [0, 1] x [0, 1] (x, y), shape (n, P, 2).
        alpha (float): Focal alpha.
        gamma (float): Focal gamma.

    Returns:
        Tensor: The mean per map, shape (n, ).
    """
    # shape (n, 1, H, W) -> (n, 1, P) -> (n, P)
    point_logits = point_sample(logits[:, None], point_coords).squeeze(1)
    # shape (n, P) -> (n, )
    return focal_loss_to_zero(point_logits, alpha, gamma).mean(dim=1)


def _sampled_focal_to_zero_mean(embeddings: Tensor, features: Tensor, point_coords: Tensor,
                                alpha: float, gamma: float) -> Tensor:
    """:func:`_focal_to_zero_at_points` of the logits of (n, C) embeddings with (C, H, W)
    features; the function that activation checkpointing recomputes in backward."""
    # shape (n, C) x (C, H, W) -> (n, H, W)
    logits = torch.einsum('nc,chw->nhw', embeddings, features)
    return _focal_to_zero_at_points(logits, point_coords, alpha, gamma)


def point_sampled_focal_to_zero_mean(embeddings: Tensor,
                                     features: Tensor,
                                     num_points: int,
                                     oversample_ratio: float = 3.0,
                                     importance_sample_ratio: float = 0.75,
                                     alpha: float = 0.25,
                                     gamma: float = 2.0,
                                     max_chunk_elements: int = 2**24) -> Tensor:
    """Mean over uncertainty-sampled points of the focal-to-zero loss of each partner mask.

    The points are drawn without gradient on the logits of the given embeddings. When one block
    of ``max_chunk_elements`` logits does not hold all of them, each block is wrapped in
    activation checkpointing so that its (n, H, W) logits are not kept for backward; the points
    of each block are drawn separately.

    Args:
        embeddings (Tensor): Embeddings e, shape (N, C).
        features (Tensor): Mask features of one partner image, shape (C, H, W).
        num_points (int): P, points per mask.
        oversample_ratio (float): Candidate points per kept point. Defaults to 3.0.
        importance_sample_ratio (float): Share of the P points taken as the most uncertain
            candidates; the rest are uniform. Defaults to 0.75.
        alpha (float): Focal alpha. Defaults to 0.25.
        gamma (float): Focal gamma. Defaults to 2.0.
        max_chunk_elements (int): Most logits computed at once. Defaults to 2**24.

    Returns:
        Tensor: ``mean_{x in points_j} FL(<e_j, F(x)>, 0)`` per embedding, shape (N, ).
    """
    num_pixels = features.shape[1] * features.shape[2]
    block_rows = max(1, max_chunk_elements // max(num_pixels, 1))
    chunked = embeddings.shape[0] > block_rows
    losses = []
    for start in range(0, embeddings.shape[0], block_rows):
        block = embeddings[start:start + block_rows]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not chunked):
            # shape (n, C) x (C, H, W) -> (n, H, W)
            logits = torch.einsum('nc,chw->nhw', block, features)
        with torch.no_grad():
            # shape (n, 1, H, W) -> (n, P, 2)
            coords = get_uncertain_point_coords_with_randomness(logits[:, None].detach(), None,
                                                                num_points, oversample_ratio,
                                                                importance_sample_ratio)
        if not chunked:
            losses.append(_focal_to_zero_at_points(logits, coords, alpha, gamma))
            continue
        del logits
        # no randomness inside the block (points are given), so no RNG state to preserve
        losses.append(
            checkpoint(
                _sampled_focal_to_zero_mean,
                block,
                features,
                coords,
                alpha,
                gamma,
                use_reentrant=False,
                preserve_rng_state=False))
    # shape num_blocks x (n, ) -> (N, )
    return torch.cat(losses) if losses else embeddings.new_zeros(0)
