# Copyright (c) mmibs contributors. All rights reserved.
"""Dataset preparation behind ``tools/dataset_converters/`` (importable, so tests and the synthetic
datasets of ``projects/toy_cityscapes`` run the same code as the command-line tools)."""
from .cityscapes_panoptic import convert_cityscapes_panoptic
from .crop_sampling_index import build_crop_sampling_index, write_crop_sampling_index
from .mapillary_vistas_panoptic import convert_mapillary_vistas_panoptic

__all__ = [
    'convert_cityscapes_panoptic', 'convert_mapillary_vistas_panoptic', 'build_crop_sampling_index',
    'write_crop_sampling_index'
]
