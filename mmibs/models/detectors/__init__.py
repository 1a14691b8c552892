# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .panoptic_fcn import PanopticFCN

__all__ = ['PanopticFCN']
