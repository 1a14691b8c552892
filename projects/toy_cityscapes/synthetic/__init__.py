# Copyright (c) mmibs contributors. All rights reserved.
"""The synthetic data of the toy experiments and of the tests, drawn with one set of primitives.

- :mod:`.scenes`: street scenes in the raw Cityscapes / Mapillary Vistas layouts (what the demo,
  the study and the converter tests read);
- :mod:`.converted`: those scenes run through the real converters, ready for a dataset;
- :mod:`.panoptic_pairs`: ground-truth / prediction pairs with structured errors (evaluators);
- :mod:`.coco_panoptic`: a tiny COCO-panoptic set (the training and testing tools);
- :mod:`.packed`: the scenes packed as model inputs, without files (benchmarks; imported on its
  own, as it needs torch and mmdet).
"""
from .coco_panoptic import TINY_CATEGORIES, write_tiny_coco_panoptic
from .converted import make_converted_cityscapes, make_converted_vistas
from .panoptic_pairs import make_panoptic_pair, write_panoptic_pairs
from .primitives import CITYSCAPES_CATEGORIES
from .scenes import (SCENE_CLASSES, draw_scene, load_manifest, make_synthetic_cityscapes,
                     make_synthetic_dataset, make_synthetic_vistas, render_image)

__all__ = [
    'CITYSCAPES_CATEGORIES', 'SCENE_CLASSES', 'TINY_CATEGORIES', 'draw_scene', 'load_manifest',
    'make_converted_cityscapes', 'make_converted_vistas', 'make_panoptic_pair',
    'make_synthetic_cityscapes', 'make_synthetic_dataset', 'make_synthetic_vistas',
    'render_image', 'write_panoptic_pairs', 'write_tiny_coco_panoptic'
]
