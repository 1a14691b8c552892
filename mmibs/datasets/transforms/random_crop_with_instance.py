# Copyright (c) mmibs contributors. All rights reserved.
"""A random crop that always contains the centre of one chosen segment box.

The released Panoptic FCN / Mask2Former IBS configs crop with detectron2's
``RandomCropWithInstance`` (``ibs_method.md`` §1.6, §5.6): the crop offset is uniform among the
offsets whose window contains the centre of a randomly chosen instance box. The baseline uses all
thing boxes; crop sampling uses only the box of the sampled segment.
"""
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmdet.datasets.transforms import RandomCrop
from mmdet.structures.bbox import autocast_box_type

from mmibs.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomCropWithInstance(RandomCrop):
    """Random crop whose window contains the centre of a randomly chosen box.

    Per axis, with box centre c (pixel ``floor(c)``), crop length L and image length S, the offset
    is uniform in ``[max(floor(c) - L + 1, 0), min(S - L, floor(c))]``: every window of that range
    holds the centre pixel. Without any candidate box it falls back to mmdet's uniform crop.
    Cropping itself (image, boxes, masks, semantic map) is mmdet's :class:`RandomCrop`.

    Required Keys:

    - img
    - gt_bboxes (BaseBoxes[torch.float32]) (optional)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_masks (BitmapMasks | PolygonMasks) (optional)
    - gt_ignore_flags (bool) (optional)
    - gt_seg_map (np.uint8) (optional)
    - crop_sampling (dict) (``box_source='sampled_segment'`` only): ``is_thing``,
      ``instance_index`` (its row in gt_bboxes) and ``label``, as set by
      :class:`mmibs.datasets.CropSamplingDataset`

    Modified Keys:

    - img
    - img_shape
    - gt_bboxes
    - gt_bboxes_labels
    - gt_masks
    - gt_ignore_flags
    - gt_seg_map

    Added Keys:

    - homography_matrix

    Args:
        crop_size (tuple): (width, height) of the crop, as mmdet's ``RandomCrop``: Cityscapes'
            512 x 1024 crop is ``(1024, 512)``.
        crop_type (str): mmdet's crop types ('absolute', 'absolute_range', 'relative',
            'relative_range'). Defaults to 'absolute'.
        box_source (str): ``'things'``: the candidate boxes are all non-ignored ``gt_bboxes``
            (the baseline); ``'sampled_segment'``: only the box of ``results['crop_sampling']``'s
            segment (a thing's box, or the box of a stuff class's pixels in ``gt_seg_map``).
            Defaults to 'things'.
        min_box_area (float): Candidate boxes need at least this area in pixels (the reference's
            ``MINIMUM_INST_AREA`` 1). Defaults to 1.
        allow_negative_crop (bool): Keep crops without any box (stuff-only crops are useful in
            panoptic training). Defaults to True.
        recompute_bbox (bool): Recompute boxes from the cropped masks. Defaults to False.
        bbox_clip_border (bool): Clip boxes to the crop. Defaults to True.
    """

    def __init__(self,
                 crop_size: tuple,
                 crop_type: str = 'absolute',
                 box_source: str = 'things',
                 min_box_area: float = 1.0,
                 allow_negative_crop: bool = True,
                 recompute_bbox: bool = False,
                 bbox_clip_border: bool = True) -> None:
        super().__init__(
            crop_size=crop_size,
            crop_type=crop_type,
            allow_negative_crop=allow_negative_crop,
            recompute_bbox=recompute_bbox,
            bbox_clip_border=bbox_clip_border)
        if box_source not in ('things', 'sampled_segment'):
            raise ValueError(f'{type(self).__name__}: box_source must be "things" or '
                             f'"sampled_segment", got {box_source!r}')
        self.box_source = box_source
        self.min_box_area = min_box_area
        self._offset: Optional[Tuple[int, int]] = None

    def _candidate_boxes(self, results: dict) -> np.ndarray:
        """Candidate boxes (N, 4) xyxy in current image pixels."""
        if self.box_source == 'sampled_segment':
            return self._sampled_segment_box(results)
        if results.get('gt_bboxes', None) is None:
            return np.zeros((0, 4), dtype=np.float32)
        boxes = results['gt_bboxes'].numpy()
        keep = np.ones(len(boxes), dtype=bool)
        if results.get('gt_ignore_flags', None) is not None:
            keep &= ~results['gt_ignore_flags'].astype(bool)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return boxes[keep & (areas >= self.min_box_area)]

    def _sampled_segment_box(self, results: dict) -> np.ndarray:
        info = results.get('crop_sampling')
        if info is None:
            raise KeyError(f'{type(self).__name__}(box_source="sampled_segment") needs '
                           'results["crop_sampling"]; build the pipeline inside a '
                           'CropSamplingDataset')
        if info['is_thing']:
            # Its row in gt_bboxes has gone through every earlier geometric transform.
            box = results['gt_bboxes'].numpy()[info['instance_index']]
            return box[None]
        ys, xs = np.nonzero(results['gt_seg_map'] == info['label'])
        if ys.size == 0:  # the stuff region vanished (resized below a pixel)
            return np.zeros((0, 4), dtype=np.float32)
        return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float32)

    @cache_randomness
    def _offset_containing(self, boxes: np.ndarray, image_size: Tuple[int, int],
                           crop_size: Tuple[int, int]) -> Optional[Tuple[int, int]]:
        """Draw a box, then an offset (y, x) whose crop contains its centre pixel."""
        if len(boxes) == 0:
            return None
        box = boxes[np.random.randint(len(boxes))]
        offset = []
        for centre, size, length in zip(((box[1] + box[3]) / 2, (box[0] + box[2]) / 2), image_size,
                                        crop_size):
            pixel = int(np.clip(np.floor(centre), 0, size - 1))
            low, high = max(pixel - length + 1, 0), min(size - length, pixel)
            offset.append(np.random.randint(low, high + 1))
        return offset[0], offset[1]

    def _rand_offset(self, margin: Tuple[int, int]) -> Tuple[int, int]:
        """Use the offset chosen in :meth:`transform`, else mmdet's uniform draw."""
        if self._offset is not None:
            return self._offset
        return super()._rand_offset(margin)

    @autocast_box_type()
    def transform(self, results: dict) -> Optional[dict]:
        """Crop around the centre of a candidate box.

        Args:
            results (dict): The pipeline dict.

        Returns:
            dict, optional: The cropped results (None only with ``allow_negative_crop=False``
            and no box left, as mmdet's RandomCrop).
        """
        image_size = results['img'].shape[:2]
        crop_size = self._get_crop_size(image_size)
        self._offset = self._offset_containing(
            self._candidate_boxes(results), image_size, crop_size)
        try:
            return self._crop_data(results, crop_size, self.allow_negative_crop)
        finally:
            self._offset = None

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, '
                f'crop_type={self.crop_type}, box_source={self.box_source}, '
                f'min_box_area={self.min_box_area}, '
                f'allow_negative_crop={self.allow_negative_crop}, '
                f'recompute_bbox={self.recompute_bbox}, '
                f'bbox_clip_border={self.bbox_clip_border})')
