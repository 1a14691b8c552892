# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .panoptic_fcn_fusion_head import PanopticFCNFusionHead

__all__ = ['PanopticFCNFusionHead']
