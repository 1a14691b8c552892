# Copyright (c) mmibs contributors. All rights reserved.
from .evaluate import (PANOPTIC_KEYS, accumulate_panoptic_stats, evaluate_panoptic,
                       match_annotations, panoptic_result_tables)
from .id_runs import IdRuns
from .panoptic_png import (PNG_DECODERS, decode_panoptic_png, png_decoder_available,
                           read_panoptic_png, read_panoptic_runs)
from .panoptic_quality import (PanopticStats, id2rgb, panoptic_stats_single, rgb2id,
                               segment_overlaps, semantic_iou, summarize_panoptic_stats)
from .thing_pixel_stats import MATCHING_MODES, thing_pixel_counts

__all__ = [
    'PANOPTIC_KEYS', 'accumulate_panoptic_stats', 'evaluate_panoptic', 'match_annotations',
    'panoptic_result_tables', 'PNG_DECODERS', 'decode_panoptic_png', 'png_decoder_available',
    'IdRuns', 'PanopticStats', 'id2rgb', 'panoptic_stats_single', 'read_panoptic_png',
    'read_panoptic_runs', 'rgb2id', 'segment_overlaps', 'semantic_iou', 'summarize_panoptic_stats',
    'MATCHING_MODES', 'thing_pixel_counts'
]
