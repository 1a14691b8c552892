# Copyright (c) mmibs contributors. All rights reserved.
from .panoptic_fcn_target_generator import PanopticFCNTargetGenerator

__all__ = ['PanopticFCNTargetGenerator']
