# Copyright (c) mmibs contributors. All rights reserved.
from .panoptic_fcn import PanopticFCN

__all__ = ['PanopticFCN']
