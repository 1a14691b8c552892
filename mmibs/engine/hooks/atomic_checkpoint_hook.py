# Copyright (c) mmibs contributors. All rights reserved.
"""``AtomicCheckpointHook``: mmengine's ``CheckpointHook`` with an atomic ``last_checkpoint``."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmibs.registry import HOOKS
from mmibs.utils.atomic_io import atomic_open


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that keeps a usable checkpoint on disk at every moment.

    Same arguments and behaviour as :class:`mmengine.hooks.CheckpointHook`, except:

    - the ``last_checkpoint`` pointer (which ``--resume`` reads) is written atomically
      (:func:`~mmibs.utils.atomic_io.atomic_open`): a run killed while writing it leaves the
      previous pointer, never an empty or partial one;
    - with ``max_keep_ckpts``, the oldest checkpoint is removed *after* the new checkpoint and
      the pointer are written, not before, so a kill in between never leaves the pointer naming
      a removed file.

    :class:`~mmibs.engine.SafeCheckpointRunner` builds this hook wherever a config names
    ``CheckpointHook``; the checkpoint file itself is written atomically by that runner.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        """mmengine 0.10.7's ``CheckpointHook._save_checkpoint_with_step`` with the two changes
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

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        # Model-parallel-like training pulls sharded states from all ranks; only the main
        # process writes the pointer and removes files.
        if not is_main_process():
            return
        with atomic_open(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
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
