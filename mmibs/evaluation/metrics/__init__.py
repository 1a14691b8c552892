# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .panoptic_quality_metric import PanopticQualityMetric

__all__ = ['PanopticQualityMetric']
