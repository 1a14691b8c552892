# Copyright (c) mmibs contributors. All rights reserved.
"""Safer checkpoints for mmengine 0.10.7: atomic writes and a refusal of foreign checkpoints.

Applied by :func:`mmibs.utils.compat.apply` (so at ``import mmibs``):

1. **Atomic writes.** mmengine writes a checkpoint with ``LocalBackend.put`` (``open(path,
   'wb')``) and the ``last_checkpoint`` pointer with a bare ``open(path, 'w')``. A run killed
   during either write leaves a truncated file, which ``--resume`` then picks up. Here local
   writes go to a temporary file in the same folder, are flushed to disk (``fsync``) and moved
   into place with ``os.replace`` (atomic on POSIX and Windows): a reader sees the old file or
   the new one, never a part. A kill can leave a hidden ``.<name>.*.tmp`` file behind, which
   nothing reads.
2. **Checkpoints of another architecture.** ``Runner.load_checkpoint`` (``load_from``,
   ``--resume``, ``tools/test.py``) loads non-strictly: a checkpoint of another model only logs
   the missing and unexpected keys, and testing then evaluates a randomly initialised network.
   Here loading raises an error naming the file and a few keys when fewer than
   ``MIN_MATCHED_FRACTION`` of the model's parameters and buffers are found in the checkpoint
   with the right shape, in total or in any top-level component (``backbone``, ``neck``,
   ``panoptic_head`` ...). The per-component rule matters: a Panoptic FCN and a Mask2Former on
   the same ResNet share most entries by count (the backbone), yet the head of one is nothing of
   the other. Partial loads above that share (a head with another number of classes) keep
   mmengine's warnings.
"""
import contextvars
import functools
import os
import re
from typing import List, Optional, Sequence, Tuple

from torch import nn

from mmibs.utils.atomic_io import atomic_open

#: Least share of the model's state entries a checkpoint must provide (by name and shape).
MIN_MATCHED_FRACTION = 0.5

# The checkpoint path being loaded by Runner.load_checkpoint, for the error message.
_LOADING_PATH: contextvars.ContextVar = contextvars.ContextVar('mmibs_loading_path', default=None)


def _atomic_put(self, obj: bytes, filepath) -> None:
    """``LocalBackend.put`` through :func:`atomic_open`."""
    with atomic_open(str(filepath), 'wb') as f:
        f.write(obj)


def _atomic_put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
    """``LocalBackend.put_text`` through :func:`atomic_open`."""
    with atomic_open(str(filepath), 'w', encoding=encoding) as f:
        f.write(obj)


def _checkpoint_hook_open(file, mode: str = 'r', *args, **kwargs):
    """``open`` as seen by mmengine's ``checkpoint_hook`` module: writes become atomic.

    The module's only write is the ``last_checkpoint`` pointer (mmengine 0.10.7, l.460).
    """
    if mode in ('w', 'wb'):
        return atomic_open(os.fspath(file), mode, encoding=kwargs.get('encoding'))
    return open(file, mode, *args, **kwargs)


def _revise(key: str, revise_keys: Sequence[Tuple[str, str]]) -> str:
    for pattern, replacement in revise_keys:
        key = re.sub(pattern, replacement, key)
    return key


def check_checkpoint_fits_model(model: nn.Module,
                                checkpoint: dict,
                                revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), ),
                                source: Optional[str] = None,
                                min_fraction: float = MIN_MATCHED_FRACTION) -> None:
    """Raise when a checkpoint provides too few of a model's parameters and buffers.

    Args:
        model (nn.Module): The model (not wrapped).
        checkpoint (dict): A loaded checkpoint, with or without a ``state_dict`` key.
        revise_keys (Sequence[tuple]): ``(pattern, replacement)`` applied to the checkpoint's
            keys, as mmengine does before loading. Defaults to stripping ``module.``.
        source (str, optional): The checkpoint path, for the message. Defaults to None.
        min_fraction (float): Least share of the model's entries matched by name and shape.
            Defaults to :data:`MIN_MATCHED_FRACTION`.

    Raises:
        RuntimeError: Naming the file, the match count and a few missing, unexpected and
            shape-mismatched keys.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise RuntimeError(f'{source or "checkpoint"}: no state dict found (got '
                           f'{type(state).__name__}); is this an mmengine/PyTorch checkpoint?')
    state = {_revise(k, revise_keys): v for k, v in state.items()}
    own = model.state_dict()
    if not own:
        return
    matched: List[str] = []
    mismatched: List[str] = []
    for key, value in own.items():
        other = state.get(key)
        if other is None:
            continue
        if tuple(getattr(other, 'shape', ())) == tuple(value.shape):
            matched.append(key)
        else:
            mismatched.append(f'{key} {tuple(other.shape)} vs {tuple(value.shape)}')
    poor = _poorly_matched_components(list(own), set(matched), min_fraction)
    if len(matched) >= min_fraction * len(own) and not poor:
        return
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    raise RuntimeError(
        f'{source or "checkpoint"}: does not fit the model {type(model).__name__}: '
        f'{len(matched)} of its {len(own)} parameters/buffers are in the checkpoint with the '
        f'same name and shape{_describe(poor)} (at least {min_fraction:.0%} are needed, in total '
        f'and per component). Missing e.g. {missing[:3]}; unexpected e.g. {unexpected[:3]}; '
        f'shape mismatch e.g. {mismatched[:3]}. Is it a checkpoint of another architecture or '
        'config?')


def _poorly_matched_components(keys: List[str], matched: set,
                               min_fraction: float) -> List[Tuple[str, int, int]]:
    """``(component, matched, total)`` of the top-level components below ``min_fraction``."""
    totals: dict = {}
    for key in keys:
        component = key.split('.', 1)[0]
        hit, total = totals.get(component, (0, 0))
        totals[component] = (hit + (key in matched), total + 1)
    return [(name, hit, total) for name, (hit, total) in totals.items()
            if hit < min_fraction * total]


def _describe(poor: List[Tuple[str, int, int]]) -> str:
    if not poor:
        return ''
    return ', and too few of ' + ', '.join(f'{name} ({hit} of {total})'
                                           for name, hit, total in poor)


def _checked_load_checkpoint_to_model(original):
    """Wrap mmengine's ``_load_checkpoint_to_model`` (as the runner module sees it)."""

    @functools.wraps(original)
    def load(model, checkpoint, strict=False, logger=None, revise_keys=[(r'^module\.', '')]):
        check_checkpoint_fits_model(model, checkpoint, revise_keys, _LOADING_PATH.get())
        return original(model, checkpoint, strict, logger, revise_keys)

    load._mmibs_checked = True
    return load


def _runner_load_checkpoint(original):
    """Wrap ``Runner.load_checkpoint`` to make the file name available to the check."""

    @functools.wraps(original)
    def load_checkpoint(self, filename, *args, **kwargs):
        token = _LOADING_PATH.set(str(filename))
        try:
            return original(self, filename, *args, **kwargs)
        finally:
            _LOADING_PATH.reset(token)

    load_checkpoint._mmibs_checked = True
    return load_checkpoint


def apply() -> None:
    """Install the atomic writes and the checkpoint check (idempotent)."""
    from mmengine.fileio.backends import LocalBackend
    from mmengine.hooks import checkpoint_hook
    from mmengine.runner import Runner
    from mmengine.runner import runner as runner_module

    LocalBackend.put = _atomic_put
    LocalBackend.put_text = _atomic_put_text
    checkpoint_hook.open = _checkpoint_hook_open
    if not getattr(runner_module._load_checkpoint_to_model, '_mmibs_checked', False):
        runner_module._load_checkpoint_to_model = _checked_load_checkpoint_to_model(
            runner_module._load_checkpoint_to_model)
    if not getattr(Runner.load_checkpoint, '_mmibs_checked', False):
        Runner.load_checkpoint = _runner_load_checkpoint(Runner.load_checkpoint)
