# Copyright (c) mmibs contributors. All rights reserved.
from .panoptic_fcn_fusion_head import PanopticFCNFusionHead

__all__ = ['PanopticFCNFusionHead']
