# Copyright (c) mmibs contributors. All rights reserved.
"""Check a panoptic ground-truth PNG against its json entry and its image when it is loaded.

mmdet's ``LoadPanopticAnnotations`` silently makes void (255) every PNG segment id that the
image's ``segments_info`` lacks, and builds masks of the PNG's size whatever the image's size. A
json and PNG folder that do not belong together (another conversion, another split) or a
resized image thus train on wrong targets without any message. For data infos of mmibs' datasets
(:class:`~mmibs.datasets.ThingsFirstPanopticDataset` and subclasses, which store
``json_segment_ids``) mmibs raises instead, naming the files (issue 7, item 5):

- a PNG segment id (other than 0, void) that is not a segment of the image in the json;
- a PNG whose size differs from the image or from the json's ``height`` / ``width``.

The check is installed into ``LoadPanopticAnnotations._load_masks_and_semantic_segs`` by
:func:`install` (from :func:`mmibs.utils.compat.apply`, i.e. at ``import mmibs``), so the shipped
configs keep mmdet's transform name. Data infos of other datasets (mmdet's own
``CocoPanopticDataset``) go through mmdet's code unchanged.
"""
import functools

import mmcv
import numpy as np
from mmdet.structures.mask import BitmapMasks
from mmengine.fileio import get

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


def _load_masks_and_semantic_segs(self, results: dict) -> None:
    """mmdet's ``LoadPanopticAnnotations._load_masks_and_semantic_segs`` plus
    :func:`check_panoptic_png`.

    Written out rather than wrapped because the check needs the decoded id map, which mmdet's
    method does not return; the lines below are the same computation as mmdet 3.3.0's.
    """
    if results.get('seg_map_path', None) is None:
        return
    img_bytes = get(results['seg_map_path'], backend_args=self.backend_args)
    pan_png = mmcv.imfrombytes(img_bytes, flag='color', channel_order='rgb').squeeze()
    pan_png = self.rgb2id(pan_png)
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


def install() -> None:
    """Route data infos with ``json_segment_ids`` through the checked loader (idempotent)."""
    from mmdet.datasets.transforms import LoadPanopticAnnotations
    original = LoadPanopticAnnotations._load_masks_and_semantic_segs
    if getattr(original, '_mmibs_checked', False):
        return

    @functools.wraps(original)
    def load(self, results: dict) -> None:
        if JSON_SEGMENT_IDS in results:
            return _load_masks_and_semantic_segs(self, results)
        return original(self, results)

    load._mmibs_checked = True
    LoadPanopticAnnotations._load_masks_and_semantic_segs = load
