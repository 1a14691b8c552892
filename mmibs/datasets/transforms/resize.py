# Copyright (c) mmibs contributors. All rights reserved.
"""Shortest-edge resize with a random target, as the released Mapillary Vistas recipes do it.

detectron2's ``ResizeShortestEdge`` draws the short edge from a list (``sample_style='choice'``:
Panoptic FCN-IBS on Vistas picks from 1024, 1152, ..., 2048; Mask2Former from
``int(x * 0.1 * S)``, x = 5..20) or from an integer range (``'range'``), then caps the long edge.
mmdet's ``ResizeShortestEdge`` takes a fixed short edge (its output shape is detectron2's
formula); this transform draws the short edge first.
"""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmdet.datasets.transforms import ResizeShortestEdge

from mmibs.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomShortestEdgeResize(ResizeShortestEdge):
    """Resize so that the short edge is a random length, keeping the aspect ratio.

    The short edge is drawn uniformly among the integers of ``short_edge_range`` (or among
    ``short_edge_choices``); if the long edge would then exceed ``max_size`` the image is scaled
    down so that it does not. Resizing is mmdet's ``Resize`` (image, boxes, masks, semantic map).

    Required Keys:

    - img
    - gt_bboxes (BaseBoxes[torch.float32]) (optional)
    - gt_masks (BitmapMasks | PolygonMasks) (optional)
    - gt_seg_map (np.uint8) (optional)

    Modified Keys:

    - img
    - img_shape
    - gt_bboxes
    - gt_masks
    - gt_seg_map

    Added Keys:

    - scale
    - scale_factor
    - keep_ratio
    - homography_matrix

    Args:
        short_edge_range (Sequence[int], optional): Inclusive (min, max) of the short edge.
            Defaults to None.
        short_edge_choices (Sequence[int], optional): Discrete short edges to choose from
            (detectron2's ``sample_style='choice'``). Give exactly one of the two.
            Defaults to None.
        max_size (int, optional): Maximum long edge. Defaults to None (no limit).
        **resize_kwargs: Passed to mmdet's ``Resize`` (e.g. ``interpolation``).
    """

    def __init__(self,
                 short_edge_range: Optional[Sequence[int]] = None,
                 short_edge_choices: Optional[Sequence[int]] = None,
                 max_size: Optional[int] = None,
                 **resize_kwargs) -> None:
        if (short_edge_range is None) == (short_edge_choices is None):
            raise ValueError(f'{type(self).__name__}: give exactly one of short_edge_range and '
                             f'short_edge_choices, got {short_edge_range} and {short_edge_choices}')
        valid_range = short_edge_range is None or (len(short_edge_range) == 2 and
                                                   0 < short_edge_range[0] <= short_edge_range[1])
        if not valid_range:
            raise ValueError(f'{type(self).__name__}: short_edge_range must be (min, max) with '
                             f'0 < min <= max, got {short_edge_range}')
        super().__init__(scale=0, max_size=max_size, **resize_kwargs)
        self.short_edge_range = tuple(short_edge_range) if short_edge_range else None
        self.short_edge_choices = tuple(short_edge_choices) if short_edge_choices else None

    @cache_randomness
    def _random_short_edge(self) -> int:
        if self.short_edge_range is not None:
            return int(np.random.randint(self.short_edge_range[0], self.short_edge_range[1] + 1))
        return int(self.short_edge_choices[np.random.randint(len(self.short_edge_choices))])

    def transform(self, results: dict) -> dict:
        """Resize ``results`` to a random short edge."""
        self.resize.scale = self._get_output_shape(results['img'], self._random_short_edge())
        return self.resize(results)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(short_edge_range={self.short_edge_range}, '
                f'short_edge_choices={self.short_edge_choices}, max_size={self.max_size}, '
                f'resize={self.resize_cfg})')
