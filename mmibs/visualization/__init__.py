# Copyright (c) mmibs contributors. All rights reserved.
from .confusion import SegmentMatch, best_covering_segment, draw_instance_comparison
from .inference import apply_dataset_meta, dataset_meta_from_cfg, inference_pipeline
from .panoptic_figure import (SegmentInfo, describe_segments, draw_panoptic, instance_palette,
                              label_anchor)

__all__ = [
    'SegmentInfo', 'SegmentMatch', 'best_covering_segment', 'describe_segments',
    'draw_instance_comparison', 'draw_panoptic', 'instance_palette', 'label_anchor',
    'apply_dataset_meta', 'dataset_meta_from_cfg', 'inference_pipeline'
]
