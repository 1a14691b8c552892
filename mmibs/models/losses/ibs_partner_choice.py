# Copyright (c) mmibs contributors. All rights reserved.
"""Partner choice of the IBS loss: which other images the embeddings of an image are compared with.

Three modes (``docs/method.md``, partner modes):

- ``'pair'``: image ``g`` is compared with ``g ^ 1``, the other crop of its crop-sampling pair (the
  released behaviour). Needs an even batch.
- ``'random'``: one uniformly random *other* image per image, re-drawn at every call (the
  Mask2Former release draws per prediction-head call).
- ``'all'``: every other image of the batch, averaged (an extension the paper did not try).

The batch is either this process's batch (``partner_scope='process'``, the paper) or the
concatenated batch of every rank (``partner_scope='global'``, an mmibs extension, see
:mod:`~mmibs.models.losses.ibs_dist`); one rule, :func:`_choose_partners`, serves both.
"""
from typing import List, Optional, Sequence, Union

import torch

PARTNER_MODES = ('pair', 'random', 'all')
PARTNER_SCOPES = ('process', 'global')


def _choose_partners(own: Sequence[int], total: int, mode: str,
                     device: Optional[Union[str, torch.device]], caller: str,
                     batch_text: str) -> List[List[int]]:
    """Partners of the images ``own`` of a batch of ``total`` images.

    Args:
        own (Sequence[int]): Indices (in the batch of ``total``) of the images to choose for.
        total (int): Number of images in the batch the partners come from.
        mode (str): ``'pair'``, ``'random'`` or ``'all'``.
        device (str | torch.device, optional): Device of the random draw of ``'random'``.
        caller (str): Name of the public function, for the error messages.
        batch_text (str): The batch and its size, for the error message of an odd ``'pair'``
            batch (it follows "needs an even ").

    Returns:
        list[list[int]]: One list of batch indices per entry of ``own``; empty lists when the
        batch holds a single image.
    """
    if mode not in PARTNER_MODES:
        raise ValueError(f'{caller}: mode must be one of {PARTNER_MODES}, got {mode!r}')
    if total == 1:
        return [[] for _ in own]
    if mode == 'pair':
        if total % 2:
            raise ValueError(
                f"{caller}: partner='pair' pairs image g with g ^ 1 (crop-sampled pairs) and "
                f"needs an even {batch_text}; use partner='random' or 'all' for unpaired batches")
        return [[g ^ 1] for g in own]
    if mode == 'random':
        # one draw r in [0, total - 2] per image; skipping g itself gives each other image
        # probability 1 / (total - 1)
        draws = torch.randint(0, total - 1, (len(own), ), device=device).tolist()
        return [[r + int(r >= g)] for g, r in zip(own, draws)]
    return [[j for j in range(total) if j != g] for g in own]


def ibs_partners(batch_size: int,
                 mode: str,
                 device: Optional[Union[str, torch.device]] = None) -> List[List[int]]:
    """Choose the partner images of every image of this process's batch.

    For ``'random'`` the draw is one ``torch.randint(0, B - 1, (B, ))`` call ``r`` on ``device``
    and image ``i`` gets ``r_i + (r_i >= i)``; it uses torch's RNG, so ``torch.manual_seed``
    makes it reproducible. With ``batch_size == 1`` there is no other image: the one list is
    empty (the loss is then an exact zero).

    Args:
        batch_size (int): B, the number of images of the batch.
        mode (str): ``'pair'``, ``'random'`` or ``'all'``, see the module docstring.
        device (str | torch.device, optional): Device of the random draw of ``'random'``.
            Defaults to None (CPU).

    Returns:
        list[list[int]]: B lists; ``partners[i]`` holds the partner image indices of image ``i``.
    """
    if batch_size < 1:
        raise ValueError(f'ibs_partners: batch_size must be >= 1, got {batch_size}')
    return _choose_partners(
        range(batch_size), batch_size, mode, device, 'ibs_partners',
        f'batch size per process, got batch size {batch_size}')


def global_partners(local_sizes: Sequence[int],
                    rank: int,
                    mode: str,
                    device: Optional[Union[str, torch.device]] = None) -> List[List[int]]:
    """Choose the partners of this rank's images among the images of every rank.

    Global image index ``g = offset + i``, ``offset`` the sum of the batch sizes of the lower
    ranks. Each rank draws ``'random'`` partners for its own images with torch's RNG, by the
    rule of :func:`ibs_partners` over the global batch.

    Args:
        local_sizes (Sequence[int]): Batch size of every rank, in rank order.
        rank (int): This rank.
        mode (str): ``'pair'``, ``'random'`` or ``'all'``.
        device (str | torch.device, optional): Device of the random draw. Defaults to None.

    Returns:
        list[list[int]]: ``local_sizes[rank]`` lists of global indices; empty lists when the
        global batch has a single image.
    """
    total = int(sum(local_sizes))
    offset = int(sum(local_sizes[:rank]))
    own = range(offset, offset + int(local_sizes[rank]))
    return _choose_partners(
        own, total, mode, device, 'global_partners',
        f'global batch, got {total} images (per-rank sizes {list(local_sizes)})')


def check_partners(partners: Sequence[Sequence[int]],
                   own: Sequence[int],
                   total: int,
                   scope: str = 'process') -> None:
    """Raise a ValueError when explicit partner lists do not fit the images they belong to.

    Args:
        partners (Sequence[Sequence[int]]): One list of partner indices per image of ``own``.
        own (Sequence[int]): Batch indices of the images the lists belong to (``range(B)`` for
            this process's batch, this rank's global indices for the global batch).
        total (int): Number of images of the batch the indices refer to.
        scope (str): ``'process'`` or ``'global'``, for the error messages.
            Defaults to 'process'.
    """
    where = 'IBSLoss' if scope == 'process' else "IBSLoss(partner_scope='global')"
    if len(partners) != len(own):
        raise ValueError(f'{where}: partners must hold one index list per image of this '
                         f'process, got {len(partners)} lists for {len(own)} images')
    for k, (g, part) in enumerate(zip(own, partners)):
        for j in part:
            if not 0 <= j < total or j == g:
                raise ValueError(f'{where}: partners[{k}] must list other images of the batch '
                                 f'(0..{total - 1}, not {g}), got {list(part)}')
