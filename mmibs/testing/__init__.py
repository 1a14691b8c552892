# Copyright (c) mmibs contributors. All rights reserved.
from ._coco_panoptic import TINY_CATEGORIES, write_tiny_coco_panoptic
from ._data import make_converted_cityscapes, make_converted_vistas
from ._panoptic_fcn import (panoptic_fcn_base_config, synthetic_panoptic_sample,
                            tiny_panoptic_fcn_cfg, two_car_scenes)
from ._synthetic_panoptic import CITYSCAPES_CATEGORIES, make_panoptic_pair, write_panoptic_pairs

__all__ = ['TINY_CATEGORIES', 'write_tiny_coco_panoptic', 'make_converted_cityscapes',
           'make_converted_vistas', 'panoptic_fcn_base_config', 'synthetic_panoptic_sample',
           'tiny_panoptic_fcn_cfg', 'two_car_scenes', 'CITYSCAPES_CATEGORIES', 'make_panoptic_pair',
           'write_panoptic_pairs']
