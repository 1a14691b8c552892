# Copyright (c) mmibs contributors. All rights reserved.
"""``SafeCheckpointRunner``: mmengine's runner with safe checkpoints, chosen by name in a config.

``configs/_base_/default_runtime.py`` sets ``runner_type='SafeCheckpointRunner'``;
``tools/train.py`` and ``tools/test.py`` build the runner from the ``RUNNERS`` registry whenever a
config names one.
"""
from typing import Callable, Dict, Optional, Tuple, Union

from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.priority import Priority

from mmibs.registry import HOOKS
from ..checkpoint_safety import (MIN_MATCHED_FRACTION, check_checkpoint_fits_model,
                                 history_buffers_without_methods)
from ..hooks.atomic_checkpoint_hook import AtomicCheckpointHook


# Registered in mmengine's root RUNNERS (unlike mmibs' other modules, which go into mmdet's):
# tools build runners from it before any default scope exists (mmdet's tools/train.py uses the
# root registry), and mmdet's RUNNERS finds it there too.
@RUNNERS.register_module()
class SafeCheckpointRunner(Runner):
    """mmengine's :class:`~mmengine.runner.Runner` whose checkpoints are safe to write and to load.

    Differences from ``Runner`` (everything else is inherited unchanged):

    - **Atomic writes.** Local checkpoints are written through the ``'atomic_local'`` file
      backend (:class:`~mmibs.engine.checkpoint_safety.AtomicLocalBackend`), and a configured
      ``CheckpointHook`` is built as :class:`~mmibs.engine.AtomicCheckpointHook`, which also
      writes the ``last_checkpoint`` pointer atomically. A run killed at any moment leaves the
      previous checkpoint and pointer whole, so ``--resume`` continues from them. Checkpoints to
      other storage (``backend_args`` of another backend) are written as mmengine writes them.
    - **Architecture check on load.** :meth:`load_checkpoint` (``load_from``, ``resume``,
      ``tools/test.py``) raises an error naming the file when the checkpoint provides fewer than
      :attr:`min_matched_fraction` of the model's parameters and buffers, in total or in any
      top-level component (:func:`~mmibs.engine.checkpoint_safety.check_checkpoint_fits_model`).
      The check runs after the ``after_load_checkpoint`` hooks, which may rename keys.
    - **Safe-loadable checkpoints.** The message hub's history buffers are saved without function
      references, so torch's ``weights_only`` loader (the default from torch 2.6) reads the
      checkpoints with the allow-list of :mod:`mmibs.utils.compat`
      (:func:`~mmibs.engine.checkpoint_safety.history_buffers_without_methods`).
    """

    #: Least share of the model's state entries a loaded checkpoint must provide.
    min_matched_fraction: float = MIN_MATCHED_FRACTION
    # (path, revise_keys) while load_checkpoint runs, for the check in call_hook
    _loading: Optional[Tuple[str, list]] = None

    # ------------------------------------------------------------------------------------------
    # loading
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

    # ------------------------------------------------------------------------------------------
    # saving
    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None):
        """``Runner.save_checkpoint`` writing local files atomically (``'atomic_local'``).

        Args: as :meth:`mmengine.runner.Runner.save_checkpoint`.
        """
        if file_client_args is None and _is_local(out_dir, backend_args):
            backend_args = dict(backend_args or {}, backend='atomic_local')
        return super().save_checkpoint(
            out_dir,
            filename,
            file_client_args=file_client_args,
            save_optimizer=save_optimizer,
            save_param_scheduler=save_param_scheduler,
            meta=meta,
            by_epoch=by_epoch,
            backend_args=backend_args)

    def register_hook(self,
                      hook: Union[Hook, Dict],
                      priority: Optional[Union[str, int, Priority]] = None) -> None:
        """``Runner.register_hook``; a ``CheckpointHook`` config builds an
        :class:`~mmibs.engine.AtomicCheckpointHook` (same arguments, atomic pointer writes).

        A hook passed as an object is registered as it is.
        """
        if isinstance(hook, dict):
            hook_type = hook.get('type')
            if isinstance(hook_type, str):
                hook_type = HOOKS.get(hook_type)
            if hook_type is CheckpointHook:
                hook = dict(hook, type=AtomicCheckpointHook)
        super().register_hook(hook, priority)


def _is_local(out_dir: str, backend_args: Optional[dict]) -> bool:
    """Whether mmengine would write ``out_dir`` with its plain local backend."""
    return type(get_file_backend(out_dir, backend_args=backend_args)) is LocalBackend
