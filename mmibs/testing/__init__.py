# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from ._coco_panoptic import TINY_CATEGORIES, write_tiny_coco_panoptic

__all__ = ['TINY_CATEGORIES', 'write_tiny_coco_panoptic']
