# Copyright (c) mmibs contributors. All rights reserved.
"""mmibs: Intra-Batch Supervision for panoptic segmentation, an MMDetection 3.x extension.

Importing mmibs checks the OpenMMLab versions, applies the compatibility fixes of
:mod:`mmibs.utils.compat` and registers every mmibs module into mmdet's registries, so a config
only needs ``custom_imports=dict(imports=['mmibs'], allow_failed_imports=False)``.
"""
import mmcv
import mmdet
import mmengine
from mmengine.utils import digit_version

from .version import __version__, version_info

mmcv_minimum_version = '2.1.0'
mmcv_maximum_version = '2.2.0'
mmengine_minimum_version = '0.10.0'
mmengine_maximum_version = '1.0.0'
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

# Compatibility first: it must run before anything loads a checkpoint.
from .utils import compat  # noqa: E402

compat.apply()

# Registration-only imports: each subpackage registers its modules into mmdet's registries.
from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__all__ = ['__version__', 'version_info']
