# Copyright (c) mmibs contributors. All rights reserved.
from .mask2former_ibs_head import Mask2FormerIBSHead
from .maskformer_ibs_head import MaskFormerIBSHead
from .panoptic_fcn_head import PanopticFCNHead
from .panoptic_fcn_head_module import PanopticFCNHeadModule
from .query_ibs_mixin import QueryIBSMixin

__all__ = [
    'Mask2FormerIBSHead', 'MaskFormerIBSHead', 'PanopticFCNHead', 'PanopticFCNHeadModule',
    'QueryIBSMixin'
]
