# Copyright (c) mmibs contributors. All rights reserved.
"""Partner choice of the IBS loss: which other images the embeddings of an image are compared with.

Partners are images of the same process's batch, as in the paper and both releases. Three modes
(``docs/method.md``, partner modes):

- ``'pair'``: image ``i`` is compared with ``i ^ 1``, the other crop of its crop-sampling pair (the
  released behaviour). Needs an even batch.
- ``'random'``: one uniformly random *other* image per image, re-drawn at every call (the
  Mask2Former release draws per prediction-head call).
- ``'all'``: every other image of the batch, averaged (an extension the paper did not try).
"""
from typing import List, Optional, Sequence, Union

import torch

PARTNER_MODES = ('pair', 'random', 'all')


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
    if mode not in PARTNER_MODES:
        raise ValueError(f'ibs_partners: mode must be one of {PARTNER_MODES}, got {mode!r}')
    if batch_size == 1:
        return [[]]
    if mode == 'pair':
        if batch_size % 2:
            raise ValueError(
                "ibs_partners: partner='pair' pairs image i with i ^ 1 (crop-sampled pairs) and "
                f'needs an even batch size per process, got batch size {batch_size}; use '
                "partner='random' or 'all' for unpaired batches")
        return [[i ^ 1] for i in range(batch_size)]
    if mode == 'random':
        # one draw r in [0, B - 2] per image; skipping i itself gives each other image
        # probability 1 / (B - 1)
        draws = torch.randint(0, batch_size - 1, (batch_size, ), device=device).tolist()
        return [[r + int(r >= i)] for i, r in enumerate(draws)]
    return [[j for j in range(batch_size) if j != i] for i in range(batch_size)]


def check_partners(partners: Sequence[Sequence[int]], batch_size: int) -> None:
    """Raise a ValueError when explicit partner lists do not fit the batch.

    Args:
        partners (Sequence[Sequence[int]]): One list of partner indices per image.
        batch_size (int): B, the number of images of the batch.
    """
    if len(partners) != batch_size:
        raise ValueError(f'IBSLoss: partners must hold one index list per image of this '
                         f'process, got {len(partners)} lists for {batch_size} images')
    for i, part in enumerate(partners):
        for j in part:
            if not 0 <= j < batch_size or j == i:
                raise ValueError(f'IBSLoss: partners[{i}] must list other images of the batch '
                                 f'(0..{batch_size - 1}, not {i}), got {list(part)}')
