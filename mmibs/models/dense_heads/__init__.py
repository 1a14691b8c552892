# Copyright (c) mmibs contributors. All rights reserved.
from .condinst_ibs_head import CondInstIBSMaskHead
from .mask2former_ibs_head import Mask2FormerIBSHead
from .maskformer_ibs_head import MaskFormerIBSHead
from .panoptic_fcn_head import PanopticFCNHead
from .panoptic_fcn_head_module import PanopticFCNHeadModule
from .query_ibs_mixin import QueryIBSMixin
from .solov2_ibs_head import SOLOV2IBSHead

__all__ = [
    'CondInstIBSMaskHead', 'Mask2FormerIBSHead', 'MaskFormerIBSHead', 'PanopticFCNHead',
    'PanopticFCNHeadModule', 'QueryIBSMixin', 'SOLOV2IBSHead'
]
