# Copyright (c) mmibs contributors. All rights reserved.
"""What the benchmarks share: a naive IBS to compare IBSLoss with, and peak-memory measurement.

Peak memory on the CPU is the kernel's peak resident set size of a fresh process (Linux:
``VmHWM`` of ``/proc/self/status``, reset with ``/proc/self/clear_refs`` 5): ``tracemalloc`` does
not see torch's allocations.
"""
import gc
import json
import os
import subprocess
import sys
from typing import List, Optional, Sequence

import torch
from mmcv.ops import point_sample
from mmdet.models.utils import get_uncertain_point_coords_with_randomness

from mmibs.models.losses import focal_loss_to_zero
from ..runs import REPO


def naive_ibs(embeddings: Sequence[torch.Tensor],
              features: torch.Tensor,
              num_points: Optional[int] = None,
              keep: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
    """IBS with plain autograd ('pair' partner, image i against i ^ 1), as the release computes it:
    the whole (N, H, W) logit map of each image and its focal terms are kept for backward.

    Args:
        embeddings (Sequence[Tensor]): Per image, (N_i, C) embeddings.
        features (Tensor): (B, C, H, W) mask features.
        num_points (int, optional): Importance-sampled points per logit map (mmdet's uncertainty
            sampling, oversample 3, importance 0.75); None: every pixel. Defaults to None.
        keep (Sequence[Tensor], optional): Per image, (N_i, ) bool: the rows whose loss counts,
            selected after the logits of all N_i are computed (the release computes all queries,
            then keeps the matched things). Defaults to None (all).

    Returns:
        Tensor: The mean over embeddings of the mean focal loss to zero over pixels (points).
    """
    total, count = 0, 0
    for i, emb in enumerate(embeddings):
        # shape (N, C) x (C, H, W) -> (N, H, W)
        logits = torch.einsum('nc,chw->nhw', emb, features[i ^ 1])
        if keep is not None:
            logits = logits[keep[i]]
        if num_points is not None:
            with torch.no_grad():
                coords = get_uncertain_point_coords_with_randomness(
                    logits[:, None], None, num_points, 3.0, 0.75)
            logits = point_sample(logits[:, None], coords).squeeze(1)  # (N, P)
        else:
            logits = logits.flatten(1)  # (N, H * W)
        total = total + focal_loss_to_zero(logits).mean(dim=1).sum()
        count += len(logits)
    return total / max(count, 1)


def proc_status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'no {field} in /proc/self/status')


def reset_peak_rss() -> float:
    """Reset the peak resident set size to the current one (Linux ``clear_refs`` 5) so that a
    later peak is not hidden by a higher transient before it; return the RSS, MiB."""
    gc.collect()
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    return proc_status_mb('VmRSS')


def run_child(module: str, argv: List[str], spec: str, env: Optional[dict] = None) -> dict:
    """Run ``python -m module *argv --child spec`` from the repository root in a fresh process
    and return the JSON object of its last output line."""
    cmd = [sys.executable, '-m', module, *argv, '--child', spec]
    out = subprocess.run(
        cmd, cwd=REPO, env=dict(os.environ, **(env or {})), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'{module}: child run {spec!r} failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])
