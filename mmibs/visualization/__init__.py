# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .confusion import SegmentMatch, best_covering_segment, draw_instance_comparison
from .inference_utils import apply_dataset_meta, dataset_meta_from_cfg, inference_pipeline
from .panoptic_figure import (SegmentInfo, describe_segments, draw_panoptic, instance_palette,
                              label_anchor)

__all__ = [
    'SegmentInfo', 'SegmentMatch', 'best_covering_segment', 'describe_segments',
    'draw_instance_comparison', 'draw_panoptic', 'instance_palette', 'label_anchor',
    'apply_dataset_meta', 'dataset_meta_from_cfg', 'inference_pipeline'
]
