# Copyright (c) mmibs contributors. All rights reserved.
"""Safer checkpoints: atomic writes, a refusal of foreign checkpoints, safe-loadable pickles.

The pieces :class:`mmibs.engine.SafeCheckpointRunner` (``runner_type='SafeCheckpointRunner'``)
and :class:`mmibs.engine.AtomicCheckpointHook` are made of; nothing here changes mmengine.

1. **Atomic writes** (:class:`AtomicLocalBackend`, registered as mmengine file backend
   ``'atomic_local'``). mmengine's ``LocalBackend.put`` writes a checkpoint with ``open(path,
   'wb')``; a run killed during the write leaves a truncated file, which ``--resume`` then picks
   up. Here local writes go to a temporary file in the same folder, are flushed to disk (``fsync``)
   and moved into place with ``os.replace`` (atomic on POSIX and Windows): a reader sees the old
   file or the new one, never a part. A kill can leave a hidden ``.<name>.*.tmp`` file behind,
   which nothing reads.
2. **Checkpoints of another architecture** (:func:`check_checkpoint_fits_model`).
   ``Runner.load_checkpoint`` (``load_from``, ``--resume``, ``tools/test.py``) loads non-strictly:
   a checkpoint of another model only logs the missing and unexpected keys, and testing then
   evaluates a randomly initialised network. The check raises an error naming the file and a few
   keys when fewer than ``MIN_MATCHED_FRACTION`` of the model's parameters and buffers are found in
   the checkpoint with the right shape, in total or in any top-level component (``backbone``,
   ``neck``, ``panoptic_head`` ...). The per-component rule matters: a Panoptic FCN and a
   Mask2Former on the same ResNet share most entries by count (the backbone), yet the head of one
   is nothing of the other. Partial loads above that share (a head with another number of
   classes) keep mmengine's warnings.
3. **History buffers without function references** (:func:`history_buffers_without_methods`).
   mmengine 0.10.7's ``HistoryBuffer.__getstate__`` pickles its statistics methods as
   ``getattr(HistoryBuffer, 'min')``, which torch's ``weights_only`` loader refuses (and must:
   see :mod:`mmibs.utils.compat`). The checkpoint's copies of the buffers are pickled without them;
   ``HistoryBuffer.__setstate__`` restores the defaults on load, so nothing is lost.
"""
import os
import re
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from torch import nn

from mmibs.utils.atomic_io import atomic_open

__all__ = [
    'AtomicLocalBackend', 'MIN_MATCHED_FRACTION', 'atomic_open', 'check_checkpoint_fits_model',
    'history_buffers_without_methods'
]

#: Least share of the model's state entries a checkpoint must provide (by name and shape).
MIN_MATCHED_FRACTION = 0.5


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic (:func:`atomic_open`).

    Selected with ``backend_args=dict(backend='atomic_local')``; :class:`SafeCheckpointRunner`
    does so for its local checkpoint writes. Reads, listing and removal are ``LocalBackend``'s.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        """Write bytes to ``filepath`` atomically (its folder is created)."""
        with atomic_open(os.fspath(filepath), 'wb') as f:
            f.write(obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically (its folder is created)."""
        with atomic_open(os.fspath(filepath), 'w', encoding=encoding) as f:
            f.write(obj)


def history_buffers_without_methods(checkpoint: dict) -> dict:
    """Let a checkpoint's ``HistoryBuffer`` s pickle without their statistics methods.

    Replaces each buffer under ``checkpoint['message_hub']['log_scalars']`` (mmengine's
    ``MessageHub.state_dict`` hands out deep copies) by a copy that pickles its data only: the
    pickle holds the ``HistoryBuffer`` class, numpy arrays and ints, no ``getattr``. The copies are
    still ``HistoryBuffer`` s; the class is not changed. Loading runs
    ``HistoryBuffer.__setstate__``, which registers the default statistics methods again.

    Args:
        checkpoint (dict): The checkpoint about to be saved; changed in place.

    Returns:
        dict: ``checkpoint``.
    """
    scalars = checkpoint.get('message_hub', {}).get('log_scalars')
    if not isinstance(scalars, dict):
        return checkpoint
    for key, buffer in list(scalars.items()):
        if isinstance(buffer, HistoryBuffer):
            scalars[key] = _data_only_copy(buffer)
    return checkpoint


def _data_only_copy(buffer: HistoryBuffer) -> HistoryBuffer:
    """A ``HistoryBuffer`` with ``buffer``'s data whose pickled state is that data only."""
    clean = HistoryBuffer.__new__(HistoryBuffer)
    state = {k: v for k, v in vars(buffer).items() if k != 'statistics_methods'}
    vars(clean).update(state)
    # pickle asks the *instance* for __getstate__, so this one attribute overrides the class's
    # (which adds the methods) for this copy alone; it returns a fresh dict like the class's.
    clean.__getstate__ = state.copy
    return clean


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
