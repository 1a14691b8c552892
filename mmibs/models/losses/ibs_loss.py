# Copyright (c) mmibs contributors. All rights reserved.
"""The Intra-Batch Supervision (IBS) loss (de Geus & Dubbelman, WACV 2023).

The thing embeddings of image ``i`` are multiplied with the mask features of a *partner* image of
the same batch; the instances behind the embeddings are not in the partner image, so every
resulting mask logit is supervised towards "empty" with a sigmoid focal loss against an all-zero
target (``docs/method.md``). The pieces live in their own modules:

- partner choice: :mod:`~mmibs.models.losses.ibs_partner_choice`;
- the focal-to-zero term and its memory-saving dense mean:
  :mod:`~mmibs.models.losses.focal_to_zero`;
- its mean over uncertainty-sampled points: :mod:`~mmibs.models.losses.focal_to_zero_points`.

Shape shorthand: B images, N_i embeddings of image i, C channels, H x W mask-feature size
(stride 4 of the input), P sampled points.
"""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from mmibs.registry import MODELS
from .focal_to_zero import dense_focal_to_zero_mean
from .focal_to_zero_points import point_sampled_focal_to_zero_mean
from .ibs_partner_choice import PARTNER_MODES, check_partners, ibs_partners


def _check_inputs(embeddings: Sequence[Tensor], mask_features: Tensor,
                  weights: Optional[Sequence[Tensor]],
                  partners: Optional[Sequence[Sequence[int]]]) -> None:
    """Raise a ValueError naming the argument when the IBS inputs do not fit together."""
    if mask_features.dim() != 4:
        raise ValueError('IBSLoss: mask_features must have shape (B, C, H, W), got '
                         f'{tuple(mask_features.shape)}')
    batch_size, channels = mask_features.shape[:2]
    if len(embeddings) != batch_size:
        raise ValueError(f'IBSLoss: embeddings must hold one (N_i, C) tensor per image, got '
                         f'{len(embeddings)} tensors for a batch of {batch_size}')
    for i, emb in enumerate(embeddings):
        if emb.dim() != 2 or emb.shape[1] != channels:
            raise ValueError(f'IBSLoss: embeddings[{i}] must have shape (N_i, {channels}) to '
                             f'match mask_features, got {tuple(emb.shape)}')
    if weights is not None:
        if len(weights) != batch_size:
            raise ValueError(f'IBSLoss: weights must hold one (N_i, ) tensor per image, got '
                             f'{len(weights)} for a batch of {batch_size}')
        for i, (w, emb) in enumerate(zip(weights, embeddings)):
            if tuple(w.shape) != (emb.shape[0], ):
                raise ValueError(f'IBSLoss: weights[{i}] must have shape ({emb.shape[0]}, ), got '
                                 f'{tuple(w.shape)}')
    if partners is not None:
        check_partners(partners, batch_size)


def ibs_loss(embeddings: Sequence[Tensor],
             mask_features: Tensor,
             partners: Sequence[Sequence[int]],
             weights: Optional[Sequence[Tensor]] = None,
             avg_factor: Optional[Union[float, Tensor]] = None,
             num_points: Optional[int] = None,
             oversample_ratio: float = 3.0,
             importance_sample_ratio: float = 0.75,
             alpha: float = 0.25,
             gamma: float = 2.0,
             max_chunk_elements: int = 2**24) -> Tensor:
    """IBS loss, ``sum_i sum_j w_ij mean_{p in partners(i)} mean_x FL(<e_ij, F_p(x)>, 0)``
    divided by ``max(avg_factor, 1)``.

    It is computed in float32 with autocast disabled: the focal term of tiny probabilities
    underflows in half precision. An empty partner list or no embeddings gives an exact zero that
    is still part of the autograd graph (``0 * sum``), so distributed training sees every
    parameter used.

    Args:
        embeddings (Sequence[Tensor]): Thing embeddings per image, B tensors of shape (N_i, C);
            N_i may be 0.
        mask_features (Tensor): Mask features, shape (B, C, H, W).
        partners (Sequence[Sequence[int]]): Partner images of each image, see
            :func:`~mmibs.models.losses.ibs_partner_choice.ibs_partners`.
        weights (Sequence[Tensor], optional): Weight per embedding, B tensors of shape (N_i, ).
            Gradients flow into them. Defaults to None (all 1).
        avg_factor (float | Tensor, optional): Normaliser. Defaults to None: the number of
            embeddings, sum_i N_i.
        num_points (int, optional): Points per mask for uncertainty point sampling; None takes
            the mean over all H x W positions. Defaults to None.
        oversample_ratio (float): Candidate points per kept point, see
            :func:`~mmibs.models.losses.focal_to_zero_points.point_sampled_focal_to_zero_mean`.
            Defaults to 3.0.
        importance_sample_ratio (float): Share of the points taken as the most uncertain
            candidates. Defaults to 0.75.
        alpha (float): Focal alpha. Defaults to 0.25.
        gamma (float): Focal gamma. Defaults to 2.0.
        max_chunk_elements (int): Most logits computed at once. Defaults to 2**24.

    Returns:
        Tensor: Scalar float32 loss.
    """
    _check_inputs(embeddings, mask_features, weights, partners)
    num_embeddings = sum(int(emb.shape[0]) for emb in embeddings)
    with torch.autocast(device_type=mask_features.device.type, enabled=False):
        # One unbind instead of mask_features[j] per use: the backward of every select allocates
        # and fills a zero tensor of the whole (B, C, H, W) batch, a fifth of the loss's CPU time.
        image_features = mask_features.float().unbind(0)
        total = None
        for i, emb in enumerate(embeddings):
            if emb.shape[0] == 0 or len(partners[i]) == 0:
                continue
            emb = emb.float()
            per_partner = []
            for j in partners[i]:
                features = image_features[j]
                if num_points is None:
                    per_partner.append(
                        dense_focal_to_zero_mean(emb, features, alpha, gamma, max_chunk_elements))
                else:
                    per_partner.append(
                        point_sampled_focal_to_zero_mean(emb, features, num_points,
                                                         oversample_ratio, importance_sample_ratio,
                                                         alpha, gamma, max_chunk_elements))
            # shape (num_partners, N_i) -> (N_i, )
            per_embedding = torch.stack(per_partner).mean(dim=0)
            if weights is not None:
                per_embedding = per_embedding * weights[i].float()
            total = per_embedding.sum() if total is None else total + per_embedding.sum()
        if total is None:
            # nothing to compare: an exact zero that keeps every input in the graph
            total = sum(f.sum() * 0 for f in image_features)
            for emb in embeddings:
                total = total + emb.float().sum() * 0
            return total
        if avg_factor is None:
            avg_factor = num_embeddings
        avg_factor = torch.as_tensor(avg_factor, dtype=torch.float32, device=total.device)
        return total / avg_factor.clamp(min=1)


@MODELS.register_module()
class IBSLoss(nn.Module):
    """Intra-Batch Supervision loss.

    See `Intra-Batch Supervision for Panoptic Segmentation on High-Resolution Images
    <https://arxiv.org/abs/2304.08222>`_ and ``docs/method.md``.

    In the dense mode (``num_points=None``) the value is
    ``loss_weight * sum_i sum_j w_ij * mean_{p in partners(i)} mean_x FL(<e_ij, F_p(x)>, 0)
    / max(avg_factor, 1)``, FL the sigmoid focal loss; with ``num_points`` the mean over x runs
    over uncertainty-sampled points (Mask2Former + IBS).

    Args:
        partner (str): ``'pair'`` (image i with i ^ 1), ``'random'`` (a random other image,
            re-drawn per call) or ``'all'`` (every other image, averaged). Defaults to 'pair'.
        num_points (int, optional): Points per mask; None averages over all pixels (Panoptic FCN
            + IBS). Defaults to None.
        oversample_ratio (float): Candidate points per kept point. Defaults to 3.0.
        importance_sample_ratio (float): Share of most-uncertain points. Defaults to 0.75.
        alpha (float): Focal alpha. Defaults to 0.25.
        gamma (float): Focal gamma. Defaults to 2.0.
        max_chunk_elements (int): Most logits (embeddings x pixels) computed at once; larger
            products are processed in blocks of embeddings. Defaults to 2**24.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 partner: str = 'pair',
                 num_points: Optional[int] = None,
                 oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75,
                 alpha: float = 0.25,
                 gamma: float = 2.0,
                 max_chunk_elements: int = 2**24,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if partner not in PARTNER_MODES:
            raise ValueError(f'IBSLoss: partner must be one of {PARTNER_MODES}, got {partner!r}')
        if num_points is not None and (not isinstance(num_points, int) or num_points < 1):
            raise ValueError(f'IBSLoss: num_points must be None or a positive int, got '
                             f'{num_points!r}')
        if oversample_ratio < 1:
            raise ValueError(f'IBSLoss: oversample_ratio must be >= 1, got {oversample_ratio}')
        if not 0 <= importance_sample_ratio <= 1:
            raise ValueError('IBSLoss: importance_sample_ratio must lie in [0, 1], got '
                             f'{importance_sample_ratio}')
        if max_chunk_elements < 1:
            raise ValueError(f'IBSLoss: max_chunk_elements must be >= 1, got {max_chunk_elements}')
        self.partner = partner
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.alpha = alpha
        self.gamma = gamma
        self.max_chunk_elements = int(max_chunk_elements)
        self.loss_weight = loss_weight

    def forward(self,
                embeddings: Sequence[Tensor],
                mask_features: Tensor,
                weights: Optional[Sequence[Tensor]] = None,
                avg_factor: Optional[Union[float, Tensor]] = None,
                partners: Optional[Sequence[Sequence[int]]] = None) -> Tensor:
        """Compute the loss.

        Args:
            embeddings (Sequence[Tensor]): Thing embeddings, B tensors of shape (N_i, C).
            mask_features (Tensor): Mask features, shape (B, C, H, W).
            weights (Sequence[Tensor], optional): Per-embedding weights, B tensors (N_i, ).
                Defaults to None (all 1).
            avg_factor (float | Tensor, optional): Normaliser. Defaults to None (sum_i N_i).
            partners (Sequence[Sequence[int]], optional): Explicit partner lists overriding
                ``partner``. Defaults to None.

        Returns:
            Tensor: Scalar float32 loss.
        """
        if partners is None:
            partners = ibs_partners(mask_features.shape[0], self.partner, mask_features.device)
        return self.loss_weight * ibs_loss(
            embeddings,
            mask_features,
            partners,
            weights=weights,
            avg_factor=avg_factor,
            num_points=self.num_points,
            oversample_ratio=self.oversample_ratio,
            importance_sample_ratio=self.importance_sample_ratio,
            alpha=self.alpha,
            gamma=self.gamma,
            max_chunk_elements=self.max_chunk_elements)

    def extra_repr(self) -> str:
        return (f'partner={self.partner!r}, num_points={self.num_points}, '
                f'oversample_ratio={self.oversample_ratio}, '
                f'importance_sample_ratio={self.importance_sample_ratio}, alpha={self.alpha}, '
                f'gamma={self.gamma}, max_chunk_elements={self.max_chunk_elements}, '
                f'loss_weight={self.loss_weight}')
