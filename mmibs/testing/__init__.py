# Copyright (c) mmibs contributors. All rights reserved.
"""Unit-test helpers: tiny Panoptic FCN models and the packed batches they train on.

The synthetic datasets (raw and converted scenes, evaluator pairs, tiny COCO-panoptic sets) are in
``projects/toy_cityscapes/synthetic``.
"""
from ._panoptic_fcn import (panoptic_fcn_base_config, synthetic_panoptic_sample,
                            tiny_panoptic_fcn_cfg, two_car_scenes, unscaled_sample)

__all__ = [
    'panoptic_fcn_base_config', 'synthetic_panoptic_sample', 'tiny_panoptic_fcn_cfg',
    'two_car_scenes', 'unscaled_sample'
]
