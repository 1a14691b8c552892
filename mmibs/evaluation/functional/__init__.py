# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .evaluate import (PANOPTIC_KEYS, accumulate_panoptic_stats, evaluate_panoptic,
                       match_annotations, panoptic_result_tables)
from .panoptic_quality import (PanopticStats, id2rgb, panoptic_stats_single, read_panoptic_png,
                               rgb2id, segment_overlaps, semantic_iou, summarize_panoptic_stats)
from .thing_pixel_stats import MATCHING_MODES, thing_pixel_counts

__all__ = [
    'PANOPTIC_KEYS', 'accumulate_panoptic_stats', 'evaluate_panoptic', 'match_annotations',
    'panoptic_result_tables', 'PanopticStats', 'id2rgb', 'panoptic_stats_single',
    'read_panoptic_png', 'rgb2id', 'segment_overlaps', 'semantic_iou', 'summarize_panoptic_stats',
    'MATCHING_MODES', 'thing_pixel_counts'
]
