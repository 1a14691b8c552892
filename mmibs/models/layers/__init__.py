# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .panoptic_fcn_layers import (PanopticFCNFeatureEncoder, PanopticFCNKernelHead,
                                  PanopticFCNPositionHead)

__all__ = ['PanopticFCNFeatureEncoder', 'PanopticFCNKernelHead', 'PanopticFCNPositionHead']
