# Copyright (c) mmibs contributors. All rights reserved.
"""A random crop that always contains the centre of one chosen segment box.

The released Panoptic FCN / Mask2Former IBS configs crop with their own ``RandomCropWithInstance``
(``data/*/augmentations.py`` in Panoptic FCN-IBS, ``dataset_mappers/augmentations.py`` in
Mask2Former-IBS): the crop offset is drawn among the offsets whose window contains the centre of a
randomly chosen box. The baseline draws among the boxes of all thing segments, crowd regions
included; crop sampling uses only the box of the sampled segment (see ``docs/data.md``).
"""
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmdet.datasets.transforms import RandomCrop
from mmdet.structures.bbox import HorizontalBoxes, autocast_box_type

from mmibs.registry import TRANSFORMS
from mmibs.utils.checks import check_choice


def current_boxes(boxes: np.ndarray, results: dict) -> np.ndarray:
    """Map boxes from original image pixels to the current image of ``results``.

    Uses ``results['homography_matrix']``, which mmdet's geometric transforms (Resize,
    RandomFlip, RandomCrop) keep up to date; without it the image must still have its original
    size.

    Args:
        boxes (np.ndarray): Boxes xyxy in original pixels, shape (N, 4).
        results (dict): The pipeline dict.

    Returns:
        np.ndarray: float32 boxes xyxy in current pixels, shape (N, 4).
    """
    boxes = HorizontalBoxes(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    matrix = results.get('homography_matrix', None)
    if matrix is None:
        if tuple(results['img'].shape[:2]) != tuple(results['ori_shape'][:2]):
            raise KeyError('results has no "homography_matrix" although the image was resized '
                           f'from {results["ori_shape"]} to {results["img"].shape[:2]}; resize '
                           "with mmdet's transforms, which record it")
        return boxes.numpy()
    boxes.project_(np.asarray(matrix, dtype=np.float32))  # corners mapped, then min/max
    return boxes.numpy()


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
    - segments_info (list[dict]) (optional): with ``include_crowd``, the crowd segments'
      ``bbox`` (xyxy, original pixels) of mmibs' panoptic datasets are candidates too
    - homography_matrix (np.ndarray) (optional): maps original to current pixels (written by
      mmdet's Resize / RandomFlip / RandomCrop); used for boxes that only the data info holds
    - crop_sampling (dict) (``box_source='sampled_segment'`` only): ``is_thing``,
      ``instance_index`` (its row in gt_bboxes, -1 for stuff and crowd), ``bbox`` and
      ``label``, as set by :class:`mmibs.datasets.CropSamplingDataset`

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
        box_source (str): ``'things'``: the candidate boxes are the ``gt_bboxes`` (the
            baseline); ``'sampled_segment'``: only the box of ``results['crop_sampling']``'s
            segment (a thing's box, or the box of a stuff class's pixels in ``gt_seg_map``).
            Defaults to 'things'.
        include_crowd (bool): With ``box_source='things'``, crowd regions are candidates too:
            ignored ``gt_bboxes`` (mmdet's crowd instances) and the crowd segments of
            ``segments_info``, as the releases draw among all thing segments. False keeps only
            non-ignored ``gt_bboxes``. Defaults to True.
        min_box_area (float): Candidate boxes need at least this area in current pixels. The
            releases use every box (their ``MINIMUM_INST_AREA: 1`` only selects this crop over
            a uniform one). Defaults to 0.
        allow_negative_crop (bool): Keep crops without any box (stuff-only crops are useful in
            panoptic training). Defaults to True.
        recompute_bbox (bool): Recompute boxes from the cropped masks. Defaults to False.
        bbox_clip_border (bool): Clip boxes to the crop. Defaults to True.
    """

    def __init__(self,
                 crop_size: tuple,
                 crop_type: str = 'absolute',
                 box_source: str = 'things',
                 include_crowd: bool = True,
                 min_box_area: float = 0.0,
                 allow_negative_crop: bool = True,
                 recompute_bbox: bool = False,
                 bbox_clip_border: bool = True) -> None:
        super().__init__(
            crop_size=crop_size,
            crop_type=crop_type,
            allow_negative_crop=allow_negative_crop,
            recompute_bbox=recompute_bbox,
            bbox_clip_border=bbox_clip_border)
        check_choice(type(self).__name__, 'box_source', box_source, ('things', 'sampled_segment'))
        self.box_source = box_source
        self.include_crowd = include_crowd
        self.min_box_area = min_box_area
        self._offset: Optional[Tuple[int, int]] = None

    def _candidate_boxes(self, results: dict) -> np.ndarray:
        """Candidate boxes (N, 4) xyxy in current image pixels."""
        if self.box_source == 'sampled_segment':
            return self._sampled_segment_box(results)
        boxes = np.zeros((0, 4), dtype=np.float32)
        if results.get('gt_bboxes', None) is not None:
            boxes = results['gt_bboxes'].numpy()
            if results.get('gt_ignore_flags', None) is not None and not self.include_crowd:
                boxes = boxes[~results['gt_ignore_flags'].astype(bool)]
        if self.include_crowd:
            crowd = [s['bbox'] for s in results.get('segments_info', ()) if s.get('iscrowd')]
            if crowd:
                boxes = np.concatenate([boxes, current_boxes(np.asarray(crowd), results)])
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return boxes[areas >= self.min_box_area]

    def _sampled_segment_box(self, results: dict) -> np.ndarray:
        info = results.get('crop_sampling')
        if info is None:
            raise KeyError(f'{type(self).__name__}(box_source="sampled_segment") needs '
                           'results["crop_sampling"]; build the pipeline inside a '
                           'CropSamplingDataset')
        if info['is_thing'] and info['instance_index'] >= 0:
            # Its row in gt_bboxes has gone through every earlier geometric transform.
            box = results['gt_bboxes'].numpy()[info['instance_index']]
            return box[None]
        if info['is_thing']:  # a crowd region: no gt_bboxes row, its json box mapped
            return current_boxes(np.asarray([info['bbox']]), results)
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
                f'include_crowd={self.include_crowd}, '
                f'min_box_area={self.min_box_area}, '
                f'allow_negative_crop={self.allow_negative_crop}, '
                f'recompute_bbox={self.recompute_bbox}, '
                f'bbox_clip_border={self.bbox_clip_border})')
