# Copyright (c) mmibs contributors. All rights reserved.
from ._coco_panoptic import TINY_CATEGORIES, write_tiny_coco_panoptic
from ._data import make_converted_cityscapes, make_converted_vistas

__all__ = ['TINY_CATEGORIES', 'write_tiny_coco_panoptic', 'make_converted_cityscapes',
           'make_converted_vistas']
