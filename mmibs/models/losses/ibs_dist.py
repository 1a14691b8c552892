# Copyright (c) mmibs contributors. All rights reserved.
"""IBS across processes: the mask features of every rank, for partners from the global batch.

The paper and both releases compare an image only with images of the *same process*
(``docs/method.md``, partner modes); with 1 or 2 images per GPU that leaves at most one partner.
With ``IBSLoss(partner_scope='global')`` (an mmibs extension) every rank gathers the mask features
of all ranks and the partner indices run over the *global* batch, global index
``g = rank_offset + i``, chosen by
:func:`~mmibs.models.losses.ibs_partner_choice.global_partners`.

Each rank computes the loss of its own embeddings only, normalised as per process (its own
``avg_factor``), so the sum of the ranks' losses equals one single-process loss over the
concatenated batch with the same partners and the per-rank normalisers.

Gradients (``gather_grad``):

- ``True`` (default): features are gathered with ``torch.distributed.nn.functional.all_gather``,
  whose backward sends every rank's gradient of a remote image back to its owner and sums them
  (an all-to-all on gloo, reduce-scatter on NCCL). The gradient of rank ``s``'s mask features is
  then ``d(sum_r L_r) / dF_s``, exactly the single-process gradient of the concatenated batch;
  DDP then averages parameter gradients over the W ranks as for every other loss, i.e. the
  objective is ``mean_r L_r``, as for mmdet's per-process losses.
- ``False``: remote features are gathered without gradient; the partner features of image ``i``
  only receive the gradient of the rank that owns them. Cheaper (no backward communication) and
  still supervises every embedding fully; the features miss the gradient of remote embeddings.
"""
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

from .ibs_partner_choice import check_partners, global_partners

# (embeddings, features, weights, partners, anchor) over the global batch
GlobalIBSInputs = Tuple[List[Tensor], List[Tensor], Optional[List[Tensor]], List[List[int]], Tensor]


def dist_world() -> Tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


_GROUP_CACHE = {}


def ibs_process_group():
    """A process group of all ranks reserved for the IBS gathers, created on first use.

    With ``gather_grad`` the gather's backward is a collective issued from inside autograd,
    while DDP issues its bucket all-reduces from autograd hooks on the default group. Gloo pairs
    collectives by their order on a group; giving IBS its own group keeps the two streams from
    being interleaved differently on different ranks. Created lazily: every rank reaches the
    first IBS loss call at the same point of its first training step (``new_group`` is itself a
    collective over all ranks).
    """
    world = dist.group.WORLD
    group = _GROUP_CACHE.get(id(world))
    if group is None:
        _GROUP_CACHE.clear()
        group = _GROUP_CACHE[id(world)] = dist.new_group()
    return group


def _pad_to(tensor: Tensor, shape: Sequence[int]) -> Tensor:
    """Zero-pad a (B, C, H, W) tensor at the end of B, H and W up to ``shape``."""
    b, _, h, w = tensor.shape
    # F.pad order: (W_left, W_right, H_top, H_bottom, C..., C..., B..., B...)
    pads = (0, shape[3] - w, 0, shape[2] - h, 0, 0, 0, shape[0] - b)
    return torch.nn.functional.pad(tensor, pads) if any(pads) else tensor


def gather_mask_features(mask_features: Tensor, with_grad: bool = True) -> List[Tensor]:
    """Mask features of every rank, in rank order.

    Ranks may hold different batch sizes and feature sizes (e.g. the last batch of an epoch, or
    batches padded to their own largest image): each rank pads to the largest (B, H, W) for the
    collective and the result is cut back to each rank's own shape, so padding never enters a
    loss (a zero feature would give a non-zero focal term).

    Args:
        mask_features (Tensor): This rank's mask features, shape (B_r, C, H_r, W_r).
        with_grad (bool): Gather with gradient flowing back to the owning rank. Defaults to True.

    Returns:
        list[Tensor]: W tensors of shape (B_s, C, H_s, W_s); entry ``rank`` is ``mask_features``
        itself (same autograd node).
    """
    rank, world_size = dist_world()
    if world_size == 1:
        return [mask_features]
    group = ibs_process_group()
    local_shape = torch.tensor(mask_features.shape, dtype=torch.long, device=mask_features.device)
    shapes = [torch.zeros_like(local_shape) for _ in range(world_size)]
    dist.all_gather(shapes, local_shape, group=group)
    shapes = [tuple(int(v) for v in s) for s in shapes]
    channels = {s[1] for s in shapes}
    if len(channels) != 1:
        raise ValueError(f'IBSLoss(partner_scope=global): mask_features have different channel '
                         f'counts across ranks: {[s[1] for s in shapes]}')
    max_shape = [max(s[k] for s in shapes) for k in range(4)]
    padded = _pad_to(mask_features, max_shape).contiguous()
    if with_grad:
        # gradient of remote copies is summed back onto the owner in backward
        with warnings.catch_warnings():
            # deprecated in favour of the private _functional_collectives API; it still is the
            # public autograd-aware gather and works on gloo (backward: all-to-all + sum)
            warnings.simplefilter('ignore', FutureWarning)
            gathered = torch.distributed.nn.functional.all_gather(padded, group=group)
    else:
        gathered = [torch.empty_like(padded) for _ in range(world_size)]
        dist.all_gather(gathered, padded.detach(), group=group)
    out = []
    for src, (tensor, shape) in enumerate(zip(gathered, shapes)):
        if src == rank:
            # the local copy keeps its direct graph edge (no round trip through the collective)
            out.append(mask_features)
        else:
            out.append(tensor[:shape[0], :, :shape[2], :shape[3]])
    return out


def global_ibs_inputs(embeddings: Sequence[Tensor],
                      mask_features: Tensor,
                      weights: Optional[Sequence[Tensor]],
                      partners: Optional[Sequence[Sequence[int]]],
                      mode: str,
                      gather_grad: bool = True) -> GlobalIBSInputs:
    """Turn this rank's IBS inputs into inputs over the global batch.

    Remote images get empty (0, C) embeddings, so
    :func:`~mmibs.models.losses.ibs_loss.ibs_loss_on_images` only computes this rank's terms,
    against partner features from any rank.

    Args:
        embeddings (Sequence[Tensor]): This rank's B_r tensors of shape (N_i, C).
        mask_features (Tensor): This rank's mask features, shape (B_r, C, H, W).
        weights (Sequence[Tensor], optional): This rank's per-embedding weights.
        partners (Sequence[Sequence[int]], optional): Explicit global partner indices of this
            rank's images; None draws them with :func:`global_partners`.
        mode (str): Partner mode for the draw.
        gather_grad (bool): See :func:`gather_mask_features`. Defaults to True.

    Returns:
        tuple: ``(embeddings, features, weights, partners, anchor)`` over the global batch:
        embeddings list of length sum_r B_r, features a list of (C, H_s, W_s) tensors, weights
        list or None, partner lists, and ``anchor``, a zero scalar that depends on every gathered
        tensor (added to the loss so every rank always runs the backward collective).
    """
    rank, _ = dist_world()
    per_rank = gather_mask_features(mask_features, with_grad=gather_grad)
    local_sizes = [int(f.shape[0]) for f in per_rank]
    total = sum(local_sizes)
    offset = sum(local_sizes[:rank])
    own = list(range(offset, offset + local_sizes[rank]))
    if partners is None:
        partners = global_partners(local_sizes, rank, mode, mask_features.device)
    else:
        check_partners(partners, own, total, scope='global')
    # shape W x (B_s, C, H_s, W_s) -> sum_s B_s x (C, H_s, W_s)
    features = [img for f in per_rank for img in f.unbind(0)]
    empty = embeddings[0].new_zeros((0, mask_features.shape[1])) if len(embeddings) else \
        mask_features.new_zeros((0, mask_features.shape[1]))
    all_embeddings = [empty] * total
    all_weights = None if weights is None else [empty.new_zeros(0)] * total
    all_partners = [[] for _ in range(total)]
    for k, g in enumerate(own):
        all_embeddings[g] = embeddings[k]
        all_partners[g] = list(partners[k])
        if weights is not None:
            all_weights[g] = weights[k]
    # With gather_grad the gather's backward is a collective: a rank whose loss did not depend on
    # the gathered tensors (no embeddings) would skip it and the others would wait forever.
    anchor = sum(f.float().sum() * 0 for f in per_rank)
    return all_embeddings, features, all_weights, all_partners, anchor
