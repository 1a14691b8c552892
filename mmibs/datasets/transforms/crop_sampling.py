# Copyright (c) mmibs contributors. All rights reserved.
"""Crop sampling's resize: scale the image so the sampled thing has a target size.

Crop sampling (``docs/data.md``) draws a category, a target scale s in
{32, 64, 128, 256, 512} and, for each of two crops, an image and a segment of that category. A
thing is resized so that the square root of its box area becomes s, within the dataset's limits;
a stuff segment gets the ordinary training resize.
"""
import math

from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import Resize
from mmdet.utils import ConfigType
from mmengine.registry import DefaultScope

from mmibs.registry import TRANSFORMS


def segment_scale_ratio(box_w: float, box_h: float, img_h: int, img_w: int, scale: float,
                        side_min: float, side_max: float, overall_max: float) -> float:
    """The resize ratio r of the released mappers (``dataset_mapper_sampling.py``).

    r = scale / sqrt(box_w * box_h), clamped so that r * min(H, W) lies in [side_min, side_max],
    then lowered so that r * max(H, W) <= overall_max.

    Args:
        box_w (float): Box width of the sampled segment, in original pixels.
        box_h (float): Box height.
        img_h (int): H of the original image.
        img_w (int): W of the original image.
        scale (float): Target sqrt(box area) s.
        side_min (float): Minimum short side after resizing (Cityscapes 512, Vistas 1024).
        side_max (float): Maximum short side (Cityscapes 3096, Vistas 6192).
        overall_max (float): Maximum long side (Cityscapes 6192, Vistas 9288).

    Returns:
        float: r.
    """
    ratio = scale / math.sqrt(max(box_w * box_h, 1.0))
    short, long = min(img_h, img_w), max(img_h, img_w)
    ratio = min(max(ratio, side_min / short), side_max / short)
    if ratio * long > overall_max:
        ratio = overall_max / long
    return ratio


@TRANSFORMS.register_module()
class ResizeToSegmentScale(BaseTransform):
    """Resize for crop sampling: things to a target scale, stuff with the usual resize.

    Reads ``results['crop_sampling']`` (set by :class:`mmibs.datasets.CropSamplingDataset`):
    ``scale`` (s), ``is_thing`` and ``bbox`` (the segment's box, xyxy, original pixels). For a
    thing (and ``apply_scaling``) the ratio is :func:`segment_scale_ratio`; otherwise
    ``stuff_resize`` runs. The ratio actually used is written back as
    ``crop_sampling['resize_ratio']`` (w, h), e.g. for tests and logging.

    Required, modified and added keys: those of mmdet's ``Resize`` (``img`` and the optional
    ``gt_bboxes``, ``gt_masks``, ``gt_seg_map`` resized; ``scale``, ``scale_factor``,
    ``keep_ratio``, ``homography_matrix`` added), plus ``crop_sampling`` (dict, required; gets
    ``resize_ratio``).

    Args:
        side_min (float): Minimum short side after a thing resize. Cityscapes 512, Vistas 1024.
        side_max (float): Maximum short side. Cityscapes 3096 (sic, as released), Vistas 6192.
        overall_max (float): Maximum long side. Cityscapes 6192, Vistas 9288.
        stuff_resize (dict): The resize transform for stuff segments (the dataset's ordinary
            training resize, e.g. ``dict(type='RandomResize', scale=(2048, 1024),
            ratio_range=(0.5, 2.0), keep_ratio=True)``).
        apply_scaling (bool): Scale things to s (the released ``NEW_SAMPLING_APPLY_SCALING``);
            False uses ``stuff_resize`` for every segment. Defaults to True.
        interpolation (str): Image interpolation of the thing resize. Defaults to 'bilinear'.
        backend (str): Resize backend. Defaults to 'cv2'.
    """

    def __init__(self,
                 side_min: float,
                 side_max: float,
                 overall_max: float,
                 stuff_resize: ConfigType,
                 apply_scaling: bool = True,
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2') -> None:
        if not 0 < side_min <= side_max <= overall_max:
            raise ValueError(f'{type(self).__name__}: need 0 < side_min <= side_max <= '
                             f'overall_max, got {side_min}, {side_max}, {overall_max}')
        self.side_min, self.side_max, self.overall_max = side_min, side_max, overall_max
        self.apply_scaling = apply_scaling
        with DefaultScope.overwrite_default_scope('mmdet'):  # mmdet's box-aware Resize inside
            self.stuff_resize = TRANSFORMS.build(stuff_resize)
        # mmdet's Resize does the work; its target size is set per call (as RandomResize does).
        self.resize = Resize(
            scale=(1, 1), keep_ratio=True, interpolation=interpolation, backend=backend)

    def transform(self, results: dict) -> dict:
        """Resize ``results`` for its sampled segment."""
        info = results.get('crop_sampling')
        if info is None:
            raise KeyError(f'{type(self).__name__} needs results["crop_sampling"]; build the '
                           'pipeline inside a CropSamplingDataset')
        if info['is_thing'] and self.apply_scaling:
            img_h, img_w = results['img'].shape[:2]
            x1, y1, x2, y2 = info['bbox']
            ratio = segment_scale_ratio(x2 - x1, y2 - y1, img_h, img_w, info['scale'],
                                        self.side_min, self.side_max, self.overall_max)
            self.resize.scale = (int(img_w * ratio + 0.5), int(img_h * ratio + 0.5))
            results = self.resize(results)
        else:
            results = self.stuff_resize(results)
        info['resize_ratio'] = tuple(float(f) for f in results['scale_factor'])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(side_min={self.side_min}, side_max={self.side_max}, '
                f'overall_max={self.overall_max}, apply_scaling={self.apply_scaling}, '
                f'stuff_resize={self.stuff_resize})')
