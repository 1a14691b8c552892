# Copyright (c) mmibs contributors. All rights reserved.
from .color_aug_ssd import ColorAugSSDTransform
from .crop_sampling import ResizeToSegmentScale, segment_scale_ratio
from .filtering import FilterEmptyInstances
from .loading import LoadCheckedPanopticAnnotations, check_panoptic_png
from .random_crop_with_instance import RandomCropWithInstance, current_boxes
from .resize import RandomShortestEdgeResize

__all__ = [
    'ColorAugSSDTransform', 'FilterEmptyInstances', 'LoadCheckedPanopticAnnotations',
    'RandomCropWithInstance', 'RandomShortestEdgeResize', 'ResizeToSegmentScale',
    'check_panoptic_png', 'current_boxes', 'segment_scale_ratio'
]
