# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .crop_sampling import ResizeToSegmentScale, segment_scale_ratio
from .panoptic_annotation_check import check_panoptic_png
from .random_crop_with_instance import RandomCropWithInstance
from .resize import RandomShortestEdgeResize

__all__ = [
    'RandomCropWithInstance', 'RandomShortestEdgeResize', 'ResizeToSegmentScale',
    'segment_scale_ratio', 'check_panoptic_png'
]
