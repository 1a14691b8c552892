# Copyright (c) mmibs contributors. All rights reserved.
"""Panoptic annotations that are checked against their json entry and image when loaded.

mmdet's ``LoadPanopticAnnotations`` silently makes void (255) every PNG segment id that the
image's ``segments_info`` lacks, and builds masks of the PNG's size whatever the image's size. A
json and PNG folder that do not belong together (another conversion, another split) or a
resized image thus train on wrong targets without any message.
:class:`LoadCheckedPanopticAnnotations` raises instead, naming the files, for data infos of mmibs'
datasets (:class:`~mmibs.datasets.ThingsFirstPanopticDataset` and subclasses, which store
``json_segment_ids``):

- a PNG segment id (other than 0, void) that is not a segment of the image in the json;
- a PNG whose size differs from the image or from the json's ``height`` / ``width``.

Data infos of other datasets (mmdet's own ``CocoPanopticDataset``) are loaded exactly as mmdet
loads them. mmdet's ``LoadPanopticAnnotations`` itself is not modified.

panopticapi is not needed: mmdet's ``LoadPanopticAnnotations.__init__`` imports it only for its
``rgb2id``; :class:`LoadCheckedPanopticAnnotations` decodes with mmibs' own
:func:`~mmibs.utils.panoptic_ids.rgb2id` instead (the same ids, in panopticapi's int32 dtype).
"""
from typing import Optional

import mmcv
import numpy as np
from mmdet.datasets.transforms import LoadPanopticAnnotations
from mmdet.structures.mask import BitmapMasks
from mmengine.fileio import get

from mmibs.registry import TRANSFORMS
from mmibs.utils.panoptic_ids import rgb2id

#: Data info key written by ThingsFirstPanopticDataset: ids of every json segment of the image.
JSON_SEGMENT_IDS = 'json_segment_ids'


def check_panoptic_png(pan_png: np.ndarray, results: dict) -> None:
    """Raise a ValueError when a decoded panoptic PNG does not fit its json entry and image.

    Args:
        pan_png (np.ndarray): Segment id map of the PNG, shape (H, W).
        results (dict): The transform's results: ``seg_map_path``, ``img_path``, ``img_id``,
            ``ori_shape`` (the loaded image's (H, W)), ``height`` / ``width`` (from the json) and
            ``json_segment_ids``.

    Raises:
        ValueError: Naming the PNG, the image and the offending sizes or ids.
    """
    png_path, img_path = results.get('seg_map_path'), results.get('img_path')
    png_shape = tuple(pan_png.shape[:2])
    img_shape = tuple(results['ori_shape'][:2]) if 'ori_shape' in results else None
    json_shape = (results.get('height'), results.get('width'))
    if img_shape is not None and png_shape != img_shape:
        raise ValueError(f'{png_path}: panoptic PNG of size (H, W)={png_shape}, but its image '
                         f'{img_path} is {img_shape}; the image and its annotation must have the '
                         'same size')
    if None not in json_shape and png_shape != json_shape:
        raise ValueError(f'{png_path}: panoptic PNG of size (H, W)={png_shape}, but the json gives '
                         f'height, width={json_shape} for image {results.get("img_id")!r}')
    known = np.asarray(sorted(set(results[JSON_SEGMENT_IDS]) | {0}), dtype=pan_png.dtype)
    present = np.unique(pan_png)
    unknown = present[~np.isin(present, known)]
    if unknown.size:
        raise ValueError(
            f'{png_path}: segment id(s) {unknown[:5].tolist()} of the panoptic PNG are not '
            f'segments of image {results.get("img_id")!r} in the json (it lists '
            f'{sorted(results[JSON_SEGMENT_IDS])[:10]}); the json and the PNG folder do not '
            'belong together')


def panopticapi_rgb2id(rgb: np.ndarray) -> np.ndarray:
    """panopticapi's ``rgb2id`` on a uint8 (H, W, 3) map without panopticapi: the same int32 ids.

    Args:
        rgb (np.ndarray): uint8 colours in RGB order, shape (H, W, 3).

    Returns:
        np.ndarray: int32 ids ``R + 256 G + 256**2 B``, shape (H, W).
    """
    return rgb2id(rgb).astype(np.int32)  # ids < 2**24: exact in int32


@TRANSFORMS.register_module()
class LoadCheckedPanopticAnnotations(LoadPanopticAnnotations):
    """mmdet's ``LoadPanopticAnnotations`` plus :func:`check_panoptic_png` (see the module
    docstring).

    The outputs (``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``, ``gt_masks``,
    ``gt_seg_map``) are those of mmdet's transform; a data info without ``json_segment_ids``
    goes through mmdet's loading unchanged.

    Required Keys:

    - height
    - width
    - instances
      - bbox
      - bbox_label
      - ignore_flag
    - segments_info
      - id
      - category
      - is_thing
    - seg_map_path
    - json_segment_ids (optional; the check runs when present)

    Added Keys:

    - gt_bboxes (BaseBoxes[torch.float32])
    - gt_bboxes_labels (np.int64)
    - gt_masks (BitmapMasks | PolygonMasks)
    - gt_seg_map (np.uint8)
    - gt_ignore_flags (bool)

    Args:
        with_bbox (bool): Load the boxes. Defaults to True.
        with_label (bool): Load the box labels. Defaults to True.
        with_mask (bool): Load the thing masks. Defaults to True.
        with_seg (bool): Load the semantic map. Defaults to True.
        box_type (str): Box type of ``gt_bboxes``. Defaults to 'hbox'.
        imdecode_backend (str): Image decoding backend. Defaults to 'cv2'.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
    """

    def __init__(self,
                 with_bbox: bool = True,
                 with_label: bool = True,
                 with_mask: bool = True,
                 with_seg: bool = True,
                 box_type: str = 'hbox',
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        # What mmdet's LoadPanopticAnnotations.__init__ does, without its panopticapi import:
        # set the id decoder, then run the next __init__ after LoadPanopticAnnotations' own
        # (mmdet's LoadAnnotations), with mmdet's arguments.
        self.rgb2id = panopticapi_rgb2id
        super(LoadPanopticAnnotations, self).__init__(
            with_bbox=with_bbox, with_label=with_label, with_mask=with_mask, with_seg=with_seg,
            with_keypoints=False, box_type=box_type, imdecode_backend=imdecode_backend,
            backend_args=backend_args)

    def _load_masks_and_semantic_segs(self, results: dict) -> None:
        """mmdet's loading of masks and semantic map, with the PNG checked in between.

        Written out rather than calling mmdet's method because the check needs the decoded id
        map, which mmdet's method does not return; the lines below compute what mmdet 3.3.0's
        ``LoadPanopticAnnotations._load_masks_and_semantic_segs`` computes.

        Args:
            results (dict): The pipeline dict (see the class docstring).
        """
        if JSON_SEGMENT_IDS not in results:
            super()._load_masks_and_semantic_segs(results)
            return
        if results.get('seg_map_path', None) is None:
            return
        img_bytes = get(results['seg_map_path'], backend_args=self.backend_args)
        pan_png = mmcv.imfrombytes(img_bytes, flag='color', channel_order='rgb').squeeze()
        pan_png = self.rgb2id(pan_png)  # ids and dtype of mmdet's (panopticapi's) decoding
        check_panoptic_png(pan_png, results)

        gt_masks = []
        gt_seg = np.zeros_like(pan_png) + 255  # 255 as ignore
        for segment_info in results['segments_info']:
            mask = (pan_png == segment_info['id'])
            gt_seg = np.where(mask, segment_info['category'], gt_seg)
            if segment_info.get('is_thing'):
                gt_masks.append(mask.astype(np.uint8))
        if self.with_mask:
            h, w = results['ori_shape']
            results['gt_masks'] = BitmapMasks(gt_masks, h, w)
        if self.with_seg:
            results['gt_seg_map'] = gt_seg
