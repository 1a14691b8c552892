# Copyright (c) mmibs contributors. All rights reserved.
"""mmibs: Intra-Batch Supervision for panoptic segmentation, an MMDetection 3.x extension.

Importing mmibs checks the OpenMMLab versions, registers every mmibs module into mmdet's
registries (so a config only needs ``custom_imports=dict(imports=['mmibs'],
allow_failed_imports=False)``) and adds mmengine's checkpoint contents to torch's ``weights_only``
allow-list (:func:`mmibs.engine.allow_mmengine_checkpoint_globals`). It replaces no attribute of
mmengine, mmdet or torch: behaviours beyond mmdet's are components a config or a tool chooses by
name (e.g. ``runner_type='SafeCheckpointRunner'``, ``mmibs.engine.setup_cpu_distributed``); see
``docs/engine.md``.
"""
import mmcv
import mmdet
import mmengine
from mmengine.utils import digit_version

from .version import __version__, version_info

mmcv_minimum_version = '2.1.0'
mmcv_maximum_version = '2.2.0'
# 0.10.3 is the first release with what mmibs.engine builds on (IterBasedTrainLoop re-drawing the
# trained batches on resume, is_musa_available); AtomicCheckpointHook replaces
# CheckpointHook._save_checkpoint_with_step, the same in 0.10.0-0.10.7, the newest release
# (docs/engine.md).
mmengine_minimum_version = '0.10.3'
mmengine_maximum_version = '0.10.8'
mmdet_minimum_version = '3.3.0'
mmdet_maximum_version = '3.4.0'


def _check_version(name: str, version: str, low: str, high: str) -> None:
    if not digit_version(low) <= digit_version(version) < digit_version(high):
        raise ImportError(
            f'mmibs {__version__} needs {low} <= {name} < {high}, but {name} {version} is '
            f'installed. Run `bash tools/setup_env.sh` (or `make env`) to build the pinned stack.')


_check_version('mmcv', mmcv.__version__, mmcv_minimum_version, mmcv_maximum_version)
_check_version('mmengine', mmengine.__version__, mmengine_minimum_version,
               mmengine_maximum_version)
_check_version('mmdet', mmdet.__version__, mmdet_minimum_version, mmdet_maximum_version)

# Adds to torch's weights_only allow-list only (before anything loads a checkpoint).
from .engine.checkpoint import allow_mmengine_checkpoint_globals  # noqa: E402

allow_mmengine_checkpoint_globals()

# Registration-only imports: each subpackage registers its modules into mmdet's registries.
from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__all__ = ['__version__', 'version_info']
