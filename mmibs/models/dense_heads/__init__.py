# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .mask2former_ibs_head import Mask2FormerIBSHead
from .panoptic_fcn_head import PanopticFCNHead
from .panoptic_fcn_head_module import PanopticFCNHeadModule

__all__ = ['Mask2FormerIBSHead', 'PanopticFCNHead', 'PanopticFCNHeadModule']
