# Copyright (c) mmibs contributors. All rights reserved.
"""SSD colour augmentation as the released Mask2Former + IBS trains with it.

The release sets ``INPUT.COLOR_AUG_SSD: True``, i.e. detectron2's ``ColorAugSSDTransform``
(``projects/PointRend/point_rend/color_augmentation.py``) after the crop. mmdet's
``PhotoMetricDistortion`` is not the same function: it permutes the colour channels half the
time, shifts the hue on another scale and does not clip between the steps.
"""
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmibs.registry import TRANSFORMS
from mmibs.utils.checks import check_choice


@TRANSFORMS.register_module()
class ColorAugSSDTransform(BaseTransform):
    """Random brightness, contrast, saturation and hue, clipped to uint8 after each step.

    Each step is applied with probability 0.5 (independent draws), in the released order:

    1. brightness: ``img + beta``, beta ~ U(-brightness_delta, brightness_delta);
    2. then, with probability 0.5, contrast, saturation, hue; otherwise saturation, hue,
       contrast;

    - contrast: ``img * alpha``, alpha ~ U(contrast_low, contrast_high);
    - saturation: the S channel of OpenCV's 8-bit HSV times alpha ~ U(saturation_low,
      saturation_high);
    - hue: the H channel of OpenCV's 8-bit HSV (0-180 scale) plus an integer in
      [-hue_delta, hue_delta], modulo 180.

    Every step computes in float32, clips to [0, 255] and truncates to uint8 (detectron2's
    ``convert``), so the image stays uint8 throughout. No channel permutation.

    The maths runs on BGR data, as in the release (it reverses RGB input to BGR and back);
    ``img_format`` says what the pipeline holds: mmdet's ``LoadImageFromFile`` gives BGR.

    Required Keys:

    - img (np.uint8, (H, W, 3))

    Modified Keys:

    - img

    Args:
        img_format (str): Channel order of ``results['img']``, 'BGR' or 'RGB'.
            Defaults to 'BGR' (mmdet's loaders).
        brightness_delta (float): Defaults to 32.
        contrast_low (float): Defaults to 0.5.
        contrast_high (float): Defaults to 1.5.
        saturation_low (float): Defaults to 0.5.
        saturation_high (float): Defaults to 1.5.
        hue_delta (int): Defaults to 18 (of 180).
    """

    def __init__(self,
                 img_format: str = 'BGR',
                 brightness_delta: float = 32,
                 contrast_low: float = 0.5,
                 contrast_high: float = 1.5,
                 saturation_low: float = 0.5,
                 saturation_high: float = 1.5,
                 hue_delta: int = 18) -> None:
        check_choice(type(self).__name__, 'img_format', img_format, ('BGR', 'RGB'))
        if not (0 <= contrast_low <= contrast_high and 0 <= saturation_low <= saturation_high
                and brightness_delta >= 0 and 0 <= hue_delta < 180):
            raise ValueError(f'{type(self).__name__}: need 0 <= low <= high for contrast and '
                             f'saturation, brightness_delta >= 0 and 0 <= hue_delta < 180, got '
                             f'{contrast_low}, {contrast_high}, {saturation_low}, '
                             f'{saturation_high}, {brightness_delta}, {hue_delta}')
        self.img_format = img_format
        self.brightness_delta = brightness_delta
        self.contrast_low, self.contrast_high = contrast_low, contrast_high
        self.saturation_low, self.saturation_high = saturation_low, saturation_high
        self.hue_delta = int(hue_delta)

    @cache_randomness
    def _random_params(self) -> dict:
        """Draw the parameters of one call (np.random; None = step skipped).

        Returns:
            dict: ``brightness`` (beta), ``contrast_first`` (bool), ``contrast`` (alpha),
            ``saturation`` (alpha) and ``hue`` (integer shift).
        """

        def maybe(draw) -> Optional[float]:
            return draw() if np.random.randint(2) else None

        return dict(
            brightness=maybe(
                lambda: np.random.uniform(-self.brightness_delta, self.brightness_delta)),
            contrast_first=bool(np.random.randint(2)),
            contrast=maybe(lambda: np.random.uniform(self.contrast_low, self.contrast_high)),
            saturation=maybe(lambda: np.random.uniform(self.saturation_low, self.saturation_high)),
            hue=maybe(lambda: int(np.random.randint(-self.hue_delta, self.hue_delta + 1))))

    @staticmethod
    def _convert(img: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
        """``img * alpha + beta`` in float32, clipped to [0, 255], truncated to uint8."""
        out = img.astype(np.float32) * np.float32(alpha) + np.float32(beta)
        return np.clip(out, 0, 255).astype(np.uint8)

    def apply(self, bgr: np.ndarray, params: dict) -> np.ndarray:
        """Apply given parameters (see :meth:`_random_params`) to a BGR uint8 image.

        Args:
            bgr (np.ndarray): uint8 image, shape (H, W, 3), BGR.
            params (dict): The parameters of one call.

        Returns:
            np.ndarray: The augmented uint8 image, shape (H, W, 3), BGR.
        """
        img = bgr
        if params['brightness'] is not None:
            img = self._convert(img, beta=params['brightness'])

        def contrast(img):
            if params['contrast'] is None:
                return img
            return self._convert(img, alpha=params['contrast'])

        def saturation(img):
            if params['saturation'] is None:
                return img
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            hsv[:, :, 1] = self._convert(hsv[:, :, 1], alpha=params['saturation'])
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)

        def hue(img):
            if params['hue'] is None:
                return img
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)  # 8-bit: H in [0, 180)
            hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int64) + params['hue']) % 180
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)

        steps = ((contrast, saturation, hue) if params['contrast_first'] else
                 (saturation, hue, contrast))
        for step in steps:
            img = step(img)
        return img

    def transform(self, results: dict) -> dict:
        """Augment ``results['img']`` in its channel order.

        Args:
            results (dict): The pipeline dict.

        Returns:
            dict: ``results`` with the new ``img``.
        """
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'{type(self).__name__}: needs a uint8 (H, W, 3) image, got '
                             f'{img.dtype} {img.shape} for {results.get("img_path")}; load it '
                             'with to_float32=False')
        bgr = img if self.img_format == 'BGR' else img[:, :, ::-1]
        out = self.apply(np.ascontiguousarray(bgr), self._random_params())
        results['img'] = out if self.img_format == 'BGR' else np.ascontiguousarray(out[:, :, ::-1])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(img_format={self.img_format}, '
                f'brightness_delta={self.brightness_delta}, '
                f'contrast=({self.contrast_low}, {self.contrast_high}), '
                f'saturation=({self.saturation_low}, {self.saturation_high}), '
                f'hue_delta={self.hue_delta})')
