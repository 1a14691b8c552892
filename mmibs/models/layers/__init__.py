# Copyright (c) mmibs contributors. All rights reserved.
from .panoptic_fcn_layers import (PanopticFCNFeatureEncoder, PanopticFCNKernelHead,
                                  PanopticFCNPositionHead)

__all__ = ['PanopticFCNFeatureEncoder', 'PanopticFCNKernelHead', 'PanopticFCNPositionHead']
