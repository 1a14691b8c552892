# Copyright (c) mmibs contributors. All rights reserved.
"""Store the random number generator states in checkpoints, so that a resumed run continues the
random streams of the interrupted one (opt-in: ``configs/_base_/runtime_safe.py``).

mmengine stores model, optimizer, schedulers and message hub in a checkpoint but not the RNG
states of the process, and IBS models draw random numbers at every step (the ``'random'``
partner, Mask2Former's point sampling), as do the data transforms when ``num_workers=0``. A run
resumed from iteration k therefore re-seeds and draws other numbers than the run that wrote the
checkpoint, and ends with other weights. With this hook (and ``randomness=dict(seed=...,
deterministic=True)``) an interrupted and resumed single-process run reaches the same weights as
an uninterrupted one (``tests/test_tools/test_interrupt_resume.py``).

When to restore: ``IterBasedTrainLoop.run`` calls ``before_train_epoch``, then (from mmengine
0.10.3 on) *re-draws* the k batches already trained (``next(dataloader_iterator)`` k times, which
runs the transforms and so consumes the process' numpy / random / torch streams), and then
fetches batch k + 1 *before* ``before_train_iter``. No hook runs between the skipped batches and
batch k + 1, so the hook wraps the loop's ``dataloader_iterator`` for one pass: after the k
skipped batches it restores the states, puts the original iterator back, and fetches batch k + 1.
That is exactly the point at which the uninterrupted run stood when it saved the checkpoint. For
other loops (epoch-based training, checkpoints at epoch ends) the states are restored in
``before_train_epoch``.

Data loader workers (``num_workers > 0``) are seeded per worker by mmengine's ``worker_init_fn``
and re-draw the skipped batches themselves, so their streams need no storing.
"""
import random
from typing import Dict, Iterator, Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from mmibs.registry import HOOKS

#: Key of the RNG states in an mmengine checkpoint dict.
RNG_STATE_KEY = 'rng_state'


def get_rng_states() -> dict:
    """The states of Python's ``random``, numpy's global and torch's CPU (and CUDA) generators.

    Only plain Python types and tensors, so the dict loads with ``torch.load(weights_only=True)``.

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and ``cuda`` (a list, empty without CUDA).
    """
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return dict(
        python=random.getstate(),
        numpy=dict(
            name=name,
            keys=keys.tolist(),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached_gaussian)),
        torch=torch.get_rng_state(),
        cuda=list(cuda))


def set_rng_states(states: dict) -> None:
    """Restore the states returned by :func:`get_rng_states`.

    Args:
        states (dict): The output of :func:`get_rng_states`.
    """
    version, internal, gauss_next = states['python']
    random.setstate((version, tuple(internal), gauss_next))
    state = states['numpy']
    np.random.set_state((state['name'], np.asarray(state['keys'], dtype=np.uint32), state['pos'],
                         state['has_gauss'], state['cached_gaussian']))
    torch.set_rng_state(states['torch'].cpu())
    if states.get('cuda') and torch.cuda.is_available():
        if len(states['cuda']) != torch.cuda.device_count():
            raise RuntimeError(f'RNGStateHook: the checkpoint holds the CUDA RNG states of '
                               f'{len(states["cuda"])} devices, this process sees '
                               f'{torch.cuda.device_count()}')
        torch.cuda.set_rng_state_all([s.cpu() for s in states['cuda']])


class _RestoreAfterSkippedBatches:
    """Iterator proxy: passes ``skip`` batches through, then restores the RNG states, hands the
    loop its own iterator back and fetches the next batch (see the module docstring)."""

    def __init__(self, loop: IterBasedTrainLoop, iterator: Iterator, skip: int,
                 states: dict) -> None:
        self._loop = loop
        self._iterator = iterator
        self._skip = skip
        self._states = states

    def __iter__(self) -> '_RestoreAfterSkippedBatches':
        return self

    def __next__(self):
        if self._skip > 0:
            self._skip -= 1
            return next(self._iterator)
        set_rng_states(self._states)
        self._loop.dataloader_iterator = self._iterator
        return next(self._iterator)

    def __getattr__(self, name: str):
        # only reached for attributes the proxy lacks: those of the wrapped iterator
        return getattr(self.__dict__['_iterator'], name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the RNG states in every checkpoint and restore them when training resumes.

    Add it to a config with ``custom_hooks = [dict(type='RNGStateHook')]``
    (``configs/_base_/runtime_safe.py`` does). Checkpoints without states resume as before, with
    an info message.

    The states are those of the process that writes the checkpoint. In distributed training
    mmengine saves on rank 0 only, so the other ranks' states are not stored: with more than one
    process nothing is restored (a warning says so) and resumed runs are not bit-identical.

    Args:
        isolate_val (bool): Save the states before validation and restore them after it, so that
            validating during training (whose data loader and model may draw random numbers) does
            not shift the training streams. This keeps a run resumed from a checkpoint written at a
            validation iteration identical to the uninterrupted one. Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self, isolate_val: bool = True) -> None:
        self.isolate_val = isolate_val
        self._loaded: Optional[dict] = None
        self._loaded_iter: Optional[int] = None
        self._before_val: Optional[Dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the current states to the checkpoint under ``'rng_state'``."""
        checkpoint[RNG_STATE_KEY] = get_rng_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the loaded states; they are applied only if training resumes from them."""
        self._loaded = checkpoint.get(RNG_STATE_KEY)
        self._loaded_iter = checkpoint.get('meta', {}).get('iter')

    def before_train_epoch(self, runner) -> None:
        """Restore the states at the right point of a resumed run (see the module docstring)."""
        states, saved_iter = self._loaded, self._loaded_iter
        self._loaded = self._loaded_iter = None
        loop = runner.train_loop
        if loop.iter == 0:  # a fresh run (or `load_from` fine-tuning): nothing to continue
            return
        if states is None:
            print_log(
                f'RNGStateHook: resumed at iteration {loop.iter} from a checkpoint without '
                'RNG states; the random streams restart from the seed.',
                logger='current')
            return
        if saved_iter != loop.iter:
            return  # states of another point of training (e.g. a second epoch's hook call)
        if get_world_size() > 1:
            print_log(
                'RNGStateHook: distributed training stores only rank 0\'s RNG states; '
                'they are not restored, so the resumed run is not bit-identical.',
                logger='current',
                level=30)
            return
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreAfterSkippedBatches(loop, loop.dataloader_iterator,
                                                                   loop.iter, states)
        else:
            set_rng_states(states)

    def before_val(self, runner) -> None:
        """Remember the training streams' states before validation."""
        if self.isolate_val:
            self._before_val = get_rng_states()

    def after_val(self, runner) -> None:
        """Put the training streams back as they were before validation."""
        if self.isolate_val and self._before_val is not None:
            set_rng_states(self._before_val)
            self._before_val = None
