# Copyright (c) mmibs contributors. All rights reserved.
"""Drop the thing instances that a crop has left (nearly) empty, keeping the image.

mmdet's ``RandomCrop`` drops an instance only when its *box* falls outside the crop; an instance
whose box overlaps the crop while its mask does not (an L-shaped object) or whose mask keeps a
single pixel stays as a target (for Mask2Former a matched query, for IBS an embedding). The
released mappers drop them after the augmentations:

- Panoptic FCN (``data/*/dataset_mapper*.py``): detectron2's ``filter_empty_instances`` on boxes
  recomputed from the masks: keep a mask with >= 1 pixel (and a box wider and higher than 1e-5);
- Mask2Former panoptic (``mask_former_panoptic_dataset_mapper*.py``): keep a segment with
  ``mask.sum() > 1``, i.e. >= 2 pixels, things and stuff alike;
- Mask2Former instance (``mask_former_instance_dataset_mapper.py``): keep an instance whose
  transformed json box has area > 1 and whose mask has >= 1 pixel.
"""
from typing import Optional, Union

import numpy as np
from mmdet.datasets.transforms import FilterAnnotations
from mmdet.structures.bbox import autocast_box_type

from mmibs.registry import TRANSFORMS

_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_masks', 'gt_ignore_flags')


@TRANSFORMS.register_module()
class FilterEmptyInstances(FilterAnnotations):
    """Keep the instances whose mask (and optionally box) is large enough; never drop the image.

    mmdet's ``FilterAnnotations`` with ``by_mask=True`` and ``keep_empty=False`` (an image without
    instances stays, as stuff-only crops do in panoptic training), plus an optional box-area test.
    An instance is kept when all enabled tests pass:

    - mask: ``gt_masks.areas >= min_mask_area``;
    - box size (``min_box_wh`` not None): width > min_box_wh[0] and height > min_box_wh[1];
    - box area (``min_box_area`` not None): width * height > min_box_area.

    Stuff (optional, ``min_stuff_area`` with ``num_things``): a stuff class of ``gt_seg_map``
    (label in ``[num_things, 255)``) with fewer pixels than ``min_stuff_area`` becomes void (255).
    For Mask2Former, whose mmdet head builds one mask target per stuff class present in the
    semantic map, this drops the segment as the release does; the pixels then belong to no
    target, as in the release.

    Release settings: Panoptic FCN ``FilterEmptyInstances()`` (the defaults); Mask2Former
    panoptic ``FilterEmptyInstances(min_mask_area=2, min_box_wh=None, min_stuff_area=2,
    num_things=N)``; Mask2Former instance ``FilterEmptyInstances(min_box_wh=None,
    min_box_area=1)`` with the crop's ``recompute_bbox=False`` (the release tests the
    transformed json box).

    Place it after the crop (and after any transform that can empty a mask).

    Required Keys:

    - gt_bboxes (BaseBoxes[torch.float32])
    - gt_masks (BitmapMasks | PolygonMasks)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_ignore_flags (bool) (optional)
    - gt_seg_map (np.uint8) (``min_stuff_area`` only)

    Modified Keys:

    - gt_bboxes
    - gt_bboxes_labels
    - gt_masks
    - gt_ignore_flags
    - gt_seg_map (``min_stuff_area`` only)

    Args:
        min_mask_area (int): Minimum number of mask pixels. Defaults to 1.
        min_box_wh (tuple[float, float], optional): Width and height a box must exceed.
            Defaults to (1e-5, 1e-5), detectron2's ``box_threshold``. None: no such test.
        min_box_area (float, optional): Area a box must exceed. Defaults to None (no test).
        min_stuff_area (int, optional): Minimum pixels of a stuff class in ``gt_seg_map``.
            Defaults to None (the semantic map is not touched).
        num_things (int, optional): Number of thing classes; needed with ``min_stuff_area``.
            Defaults to None.
    """

    def __init__(self,
                 min_mask_area: int = 1,
                 min_box_wh: Optional[tuple] = (1e-5, 1e-5),
                 min_box_area: Optional[float] = None,
                 min_stuff_area: Optional[int] = None,
                 num_things: Optional[int] = None) -> None:
        if min_mask_area < 0:
            raise ValueError(f'{type(self).__name__}: min_mask_area must be >= 0, got '
                             f'{min_mask_area}')
        if min_box_wh is not None and len(min_box_wh) != 2:
            raise ValueError(f'{type(self).__name__}: min_box_wh must be (width, height) or None, '
                             f'got {min_box_wh}')
        super().__init__(
            min_gt_bbox_wh=tuple(min_box_wh) if min_box_wh is not None else (0, 0),
            min_gt_mask_area=min_mask_area,
            by_box=min_box_wh is not None,
            by_mask=True,
            keep_empty=False)
        if min_stuff_area is not None and (num_things is None or num_things < 0):
            raise ValueError(f'{type(self).__name__}: min_stuff_area needs num_things (the first '
                             f'stuff label), got num_things={num_things}')
        self.min_box_area = min_box_area
        self.min_stuff_area = min_stuff_area
        self.num_things = num_things

    @autocast_box_type()
    def transform(self, results: dict) -> Union[dict, None]:
        """Filter the instances of ``results`` (see the class docstring).

        Args:
            results (dict): The pipeline dict.

        Returns:
            dict: ``results`` with the kept instances (possibly none).
        """
        if 'gt_masks' not in results or 'gt_bboxes' not in results:
            raise KeyError(f'{type(self).__name__} needs gt_bboxes and gt_masks; load them with '
                           'with_bbox=True, with_mask=True')
        if self.min_box_area is not None and len(results['gt_bboxes']):
            keep = (results['gt_bboxes'].areas > self.min_box_area).numpy()
            for key in _KEYS:
                if key in results:
                    results[key] = results[key][keep]
        if self.min_stuff_area is not None and results.get('gt_seg_map', None) is not None:
            self._void_small_stuff(results)
        return super().transform(results)

    def _void_small_stuff(self, results: dict) -> None:
        """Set stuff classes with fewer than ``min_stuff_area`` pixels to 255 (in place)."""
        seg = results['gt_seg_map']
        counts = np.bincount(seg.ravel(), minlength=256)  # shape (256, ): pixels per label
        small = np.nonzero((counts > 0) & (counts < self.min_stuff_area))[0]
        small = small[(small >= self.num_things) & (small < 255)]
        if small.size:
            results['gt_seg_map'] = np.where(np.isin(seg, small), 255, seg).astype(seg.dtype)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_mask_area={self.min_gt_mask_area}, '
                f'min_box_wh={self.min_gt_bbox_wh if self.by_box else None}, '
                f'min_box_area={self.min_box_area}, min_stuff_area={self.min_stuff_area}, '
                f'num_things={self.num_things})')
