# Copyright (c) mmibs contributors. All rights reserved.
"""Checkpoints: loadable with torch's safe loader, checked against the model, optionally atomic.

**Default** (every config inheriting ``configs/_base_/default_runtime.py``):

- :func:`allow_mmengine_checkpoint_globals`, run on ``import mmibs``, adds the classes that
  mmengine checkpoints hold besides tensors (the message hub's ``HistoryBuffer`` s, numpy arrays
  and scalars) to torch's ``weights_only`` allow-list. torch >= 2.6 loads with
  ``weights_only=True`` by default and mmengine 0.10.x calls ``torch.load`` without the argument,
  so resuming, ``load_from`` and ``tools/test.py`` would otherwise fail with an
  ``UnpicklingError``. Upstream fixed it after 0.10.7 (mmengine#1670) by switching the safety off;
  here it stays on. Nothing of torch, mmengine or mmdet is replaced: entries are only added.
- :class:`SafeCheckpointRunner` (``runner_type='SafeCheckpointRunner'``) is mmengine's ``Runner``
  whose checkpoints that loader reads (:func:`history_buffers_without_methods`) and which refuses
  a checkpoint of another architecture on load (:func:`check_checkpoint_fits_model`).

**Opt-in** (``configs/_base_/runtime_safe.py``): :class:`AtomicCheckpointHook`, mmengine's
``CheckpointHook`` whose checkpoint files and ``last_checkpoint`` pointer are written atomically
(:class:`AtomicLocalBackend`), so a run killed at any moment leaves a checkpoint ``--resume``
can use.

The runner overrides public methods only; :class:`AtomicCheckpointHook` replaces the private
``CheckpointHook._save_checkpoint_with_step``, which is the same in every mmengine release from
0.10.0 to 0.10.7, the newest (``docs/engine.md#mmengine-versions``).
"""
import os
import re
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from torch import nn

from mmibs.registry import HOOKS
from mmibs.utils.atomic_io import atomic_open

__all__ = [
    'ALLOWED_GLOBALS', 'MIN_MATCHED_FRACTION', 'AtomicCheckpointHook', 'AtomicLocalBackend',
    'SafeCheckpointRunner', 'allow_mmengine_checkpoint_globals', 'check_checkpoint_fits_model',
    'history_buffers_without_methods'
]

#: Least share of the model's state entries a checkpoint must provide (by name and shape).
MIN_MATCHED_FRACTION = 0.5

#: What :func:`allow_mmengine_checkpoint_globals` allow-listed (empty before it runs).
ALLOWED_GLOBALS: tuple = ()


# ----------------------------------------------------------------------------------------------
# safe loading
def _mmengine_checkpoint_globals() -> list:
    """The classes and functions that pickled mmengine checkpoints reference besides tensors."""
    import numpy as np

    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar

    # the message hub's HistoryBuffers hold numpy arrays and scalars
    found = [HistoryBuffer, np.ndarray, np.dtype, _reconstruct, scalar]
    # numpy >= 1.25 builds dtype instances through their classes (numpy.dtypes.Float64DType ...),
    # which `get_unsafe_globals_in_checkpoint` does not report: allow the plain numeric ones.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float64DType', 'Float32DType', 'Float16DType', 'Int64DType', 'Int32DType',
                     'Int16DType', 'Int8DType', 'UInt64DType', 'UInt32DType', 'UInt16DType',
                     'UInt8DType', 'BoolDType'):
            cls = getattr(dtypes, name, None)
            if cls is not None:
                found.append(cls)
    return found


def allow_mmengine_checkpoint_globals() -> tuple:
    """Add what mmengine checkpoints hold to torch's ``weights_only`` allow-list (idempotent).

    Run on ``import mmibs``. ``getattr``, which mmengine's own ``HistoryBuffer`` pickles
    reference, is not added: it would let a crafted checkpoint reach any attribute of any allowed
    object, i.e. run code (:func:`history_buffers_without_methods` avoids it instead). A no-op on
    torch releases without :func:`torch.serialization.add_safe_globals`.

    Returns:
        tuple: The allow-listed classes and functions (:data:`ALLOWED_GLOBALS`).
    """
    global ALLOWED_GLOBALS
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None or ALLOWED_GLOBALS:
        return ALLOWED_GLOBALS
    ALLOWED_GLOBALS = tuple(_mmengine_checkpoint_globals())
    add_safe_globals(list(ALLOWED_GLOBALS))
    return ALLOWED_GLOBALS


def history_buffers_without_methods(checkpoint: dict) -> dict:
    """Let a checkpoint's ``HistoryBuffer`` s pickle without their statistics methods.

    mmengine's ``HistoryBuffer.__getstate__`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'min')``, which torch's ``weights_only`` loader refuses. Each buffer
    under ``checkpoint['message_hub']['log_scalars']`` (mmengine's ``MessageHub.state_dict`` hands
    out deep copies) is replaced by a copy that pickles its data only: the ``HistoryBuffer``
    class, numpy arrays and ints. Loading runs ``HistoryBuffer.__setstate__``, which registers the
    default statistics methods again, so nothing is lost. The class is not changed.

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


# ----------------------------------------------------------------------------------------------
# architecture check
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

    mmengine loads non-strictly: a checkpoint of another model only logs the missing and
    unexpected keys, and testing then evaluates a randomly initialised network. This check fails
    when fewer than ``min_fraction`` of the model's entries are found with the right shape, in
    total or in any top-level component (``backbone``, ``neck``, ``panoptic_head`` ...): a Panoptic
    FCN and a Mask2Former on the same ResNet share most entries by count (the backbone), yet the
    head of one is nothing of the other. Partial fits above that share (a head with another
    number of classes) pass, with mmengine's warnings.

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


# ----------------------------------------------------------------------------------------------
# the runner
# Registered in mmengine's root RUNNERS (unlike mmibs' other modules, which go into mmdet's):
# tools build runners from it before any default scope exists (mmdet's tools/train.py uses the
# root registry), and mmdet's RUNNERS finds it there too.
@RUNNERS.register_module()
class SafeCheckpointRunner(Runner):
    """mmengine's :class:`~mmengine.runner.Runner` whose checkpoints are safe to load.

    ``runner_type`` of ``configs/_base_/default_runtime.py``. Differences from ``Runner``
    (everything else is inherited unchanged):

    - **Safe-loadable checkpoints.** The message hub's history buffers are saved without function
      references (:func:`history_buffers_without_methods`), so ``torch.load(path)`` with torch's
      defaults (``weights_only=True`` from torch 2.6) reads the checkpoints after
      ``import mmibs`` (:func:`allow_mmengine_checkpoint_globals`). A plain ``Runner``'s
      checkpoints reference ``getattr`` and need ``weights_only=False``.
    - **Architecture check on load.** :meth:`load_checkpoint` (``load_from``, ``resume``,
      ``tools/test.py``) raises an error naming the file when the checkpoint provides fewer than
      :attr:`min_matched_fraction` of the model's parameters and buffers, in total or in any
      top-level component (:func:`check_checkpoint_fits_model`). The check runs after the
      ``after_load_checkpoint`` hooks, which may rename keys.
    """

    #: Least share of the model's state entries a loaded checkpoint must provide.
    min_matched_fraction: float = MIN_MATCHED_FRACTION
    # (path, revise_keys) while load_checkpoint runs, for the check in call_hook
    _loading: Optional[Tuple[str, list]] = None

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):
        """``Runner.load_checkpoint`` that refuses a checkpoint of another architecture.

        Args and Returns: as :meth:`mmengine.runner.Runner.load_checkpoint`.

        Raises:
            RuntimeError: When the checkpoint does not fit the model (the message names
                ``filename``).
        """
        self._loading = (str(filename), revise_keys)
        try:
            return super().load_checkpoint(
                filename, map_location=map_location, strict=strict, revise_keys=revise_keys)
        finally:
            self._loading = None

    def call_hook(self, fn_name: str, **kwargs) -> None:
        """Call the hooks, then check a loaded checkpoint / clean a checkpoint to save.

        ``Runner.load_checkpoint`` and ``Runner.save_checkpoint`` hand the checkpoint dict to the
        hooks (``after_load_checkpoint`` / ``before_save_checkpoint``) just before loading it into
        the model / writing it; the runner acts on it there, after every hook.
        """
        super().call_hook(fn_name, **kwargs)
        if fn_name == 'after_load_checkpoint' and self._loading is not None:
            source, revise_keys = self._loading
            model = self.model.module if is_model_wrapper(self.model) else self.model
            check_checkpoint_fits_model(model, kwargs['checkpoint'], revise_keys, source,
                                        self.min_matched_fraction)
        elif fn_name == 'before_save_checkpoint':
            history_buffers_without_methods(kwargs['checkpoint'])


# ----------------------------------------------------------------------------------------------
# atomic writes (opt-in)
@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic (:func:`atomic_open`).

    mmengine's ``LocalBackend.put`` writes with ``open(path, 'wb')``: a run killed during the
    write leaves a truncated file. Here the data go to a temporary file in the same folder, are
    flushed to disk and moved into place with ``os.replace``. Selected with
    ``backend_args=dict(backend='atomic_local')``; :class:`AtomicCheckpointHook` does so for
    local checkpoint folders. Reads, listing and removal are ``LocalBackend``'s.
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


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that keeps a usable checkpoint on disk at every moment.

    Same arguments and behaviour as :class:`mmengine.hooks.CheckpointHook`, except:

    - local checkpoint files are written through :class:`AtomicLocalBackend` and the
      ``last_checkpoint`` pointer (which ``--resume`` reads) with :func:`atomic_open`: a run
      killed while writing either leaves the previous file whole, never a truncated one. A kill
      can leave a hidden ``.<name>.*.tmp`` file, which nothing reads. Checkpoints to other
      storage (``backend_args`` of another backend) are written as mmengine writes them;
    - with ``max_keep_ckpts``, the oldest checkpoint is removed *after* the new checkpoint and
      the pointer are written, not before, so a kill in between never leaves the pointer naming
      a removed file.

    Named in ``configs/_base_/runtime_safe.py``'s ``default_hooks.checkpoint``.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        """mmengine 0.10.x's ``CheckpointHook._save_checkpoint_with_step`` with the changes
        above (the bookkeeping of ``keep_ckpt_ids`` and ``last_ckpt`` is unchanged)."""
        expired = None
        if self.max_keep_ckpts > 0:
            # _save_checkpoint and _save_best_checkpoint may both save at this step
            if not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    expired = self.keep_ckpt_ids.popleft()
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        backend_args = self.backend_args
        if self.file_client_args is None and _is_local(self.out_dir, backend_args):
            backend_args = dict(backend_args or {}, backend='atomic_local')
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=backend_args,
            **self.args)

        # Model-parallel-like training pulls sharded states from all ranks; only the main
        # process writes the pointer and removes files.
        if not is_main_process():
            return
        with atomic_open(os.path.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
            f.write(self.last_ckpt)
        if expired is not None:
            self._remove_checkpoint(expired)

    def _remove_checkpoint(self, step: int) -> None:
        """Remove the checkpoint of ``step`` (a file, or a folder as deepspeed saves)."""
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            self.file_backend.rmtree(path)


def _is_local(out_dir: str, backend_args: Optional[dict]) -> bool:
    """Whether mmengine would write ``out_dir`` with its plain local backend."""
    return type(get_file_backend(out_dir, backend_args=backend_args)) is LocalBackend
