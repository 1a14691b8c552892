# Copyright (c) mmibs contributors. All rights reserved.
"""ColorAugSSDTransform against a naive per-pixel version of the released maths.

The reference is detectron2's ``ColorAugSSDTransform`` (``projects/PointRend/point_rend/
color_augmentation.py``), as the released Mask2Former + IBS uses it: each step in float32,
clipped to [0, 255] and truncated to uint8; hue on OpenCV's 8-bit 0-180 scale, modulo 180.
"""
import itertools

import cv2
import numpy as np
import pytest

from mmibs.datasets.transforms import ColorAugSSDTransform
from mmibs.registry import TRANSFORMS


def _image(seed=0, h=5, w=7):
    img = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    img[0, 0] = (0, 0, 0)
    img[0, 1] = (255, 255, 255)
    img[0, 2] = (0, 0, 255)  # pure red in BGR: hue 0
    img[0, 3] = (250, 3, 128)
    return img


def _pixel_convert(value, alpha=1.0, beta=0.0):
    """One channel value: float32 multiply-add, clip, truncate."""
    v = np.float32(value) * np.float32(alpha) + np.float32(beta)
    return int(min(max(v, np.float32(0)), np.float32(255)))


def _naive(bgr, params):
    """The released steps written per pixel (OpenCV only for the colour-space conversions)."""
    h, w, _ = bgr.shape
    out = bgr.copy()
    for y, x in itertools.product(range(h), range(w)):
        px = [int(c) for c in bgr[y, x]]
        if params['brightness'] is not None:
            px = [_pixel_convert(c, beta=params['brightness']) for c in px]
        order = ['saturation', 'hue']
        order.insert(0 if params['contrast_first'] else 2, 'contrast')
        for step in order:
            if params[step] is None:
                continue
            if step == 'contrast':
                px = [_pixel_convert(c, alpha=params['contrast']) for c in px]
                continue
            hsv = cv2.cvtColor(np.array([[px]], dtype=np.uint8), cv2.COLOR_BGR2HSV)[0, 0]
            hsv = [int(c) for c in hsv]
            if step == 'saturation':
                hsv[1] = _pixel_convert(hsv[1], alpha=params['saturation'])
            else:
                hsv[0] = (hsv[0] + params['hue']) % 180
            px = [
                int(c)
                for c in cv2.cvtColor(np.array([[hsv]], dtype=np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
            ]
        out[y, x] = px
    return out


PARAMS = [
    dict(brightness=None, contrast_first=True, contrast=None, saturation=None, hue=None),
    dict(brightness=31.7, contrast_first=True, contrast=1.49, saturation=None, hue=None),
    dict(brightness=-32.0, contrast_first=False, contrast=0.51, saturation=1.5, hue=-18),
    dict(brightness=None, contrast_first=True, contrast=1.3, saturation=0.5, hue=18),
    dict(brightness=12.25, contrast_first=False, contrast=None, saturation=1.21, hue=7),
    dict(brightness=-5.5, contrast_first=True, contrast=0.77, saturation=1.43, hue=-11),
]


@pytest.mark.parametrize('params', PARAMS)
def test_matches_naive_implementation(params):
    img = _image()
    out = ColorAugSSDTransform().apply(img.copy(), params)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, _naive(img, params))


def test_transform_uses_its_draws_and_keeps_channel_order():
    transform = TRANSFORMS.build(dict(type='ColorAugSSDTransform'))
    for seed in range(20):
        img = _image(seed)
        np.random.seed(seed)
        params = transform._random_params()
        np.random.seed(seed)
        out = transform(dict(img=img.copy()))['img']
        np.testing.assert_array_equal(out, _naive(img, params))
    # An RGB pipeline gets the same augmentation of the same picture (BGR maths inside).
    rgb_transform = ColorAugSSDTransform(img_format='RGB')
    for seed in range(5):
        img = _image(seed)
        np.random.seed(seed)
        out_bgr = transform(dict(img=img.copy()))['img']
        np.random.seed(seed)
        out_rgb = rgb_transform(dict(img=np.ascontiguousarray(img[:, :, ::-1])))['img']
        np.testing.assert_array_equal(out_rgb, out_bgr[:, :, ::-1])


def test_random_draws_follow_the_release():
    transform = ColorAugSSDTransform()
    np.random.seed(0)
    draws = [transform._random_params() for _ in range(4000)]
    for key in ('brightness', 'contrast', 'saturation', 'hue'):
        applied = [d[key] for d in draws if d[key] is not None]
        assert 0.46 < len(applied) / len(draws) < 0.54, key  # each step with p = 0.5
    assert 0.46 < np.mean([d['contrast_first'] for d in draws]) < 0.54
    beta = [d['brightness'] for d in draws if d['brightness'] is not None]
    assert -32 <= min(beta) < -31 and 31 < max(beta) <= 32
    alpha = [d[k] for d in draws for k in ('contrast', 'saturation') if d[k] is not None]
    assert 0.5 <= min(alpha) < 0.51 and 1.49 < max(alpha) <= 1.5
    hue = {d['hue'] for d in draws if d['hue'] is not None}
    assert hue == set(range(-18, 19))  # integers, both ends included


def test_values_are_clipped_not_wrapped_and_hue_wraps_on_180():
    transform = ColorAugSSDTransform()
    img = np.array([[[250, 10, 128], [3, 200, 100]]], dtype=np.uint8)
    off = dict(brightness=None, contrast_first=True, contrast=None, saturation=None, hue=None)
    up = transform.apply(img, dict(off, brightness=32.0))
    np.testing.assert_array_equal(up, [[[255, 42, 160], [35, 232, 132]]])
    down = transform.apply(img, dict(off, brightness=-32.0))
    np.testing.assert_array_equal(down, [[[218, 0, 96], [0, 168, 68]]])
    contrast = transform.apply(img, dict(off, contrast=1.5))
    np.testing.assert_array_equal(contrast, [[[255, 15, 192], [4, 255, 150]]])
    # Pure red has hue 0 of 180; -18 wraps to 162 (a magenta red), not to a negative value.
    red = np.array([[[0, 0, 255]]], dtype=np.uint8)
    shifted = transform.apply(red, dict(off, hue=-18))
    assert cv2.cvtColor(shifted, cv2.COLOR_BGR2HSV)[0, 0, 0] == 162
    assert shifted[0, 0, 0] > 0 and shifted[0, 0, 1] == 0  # blue added, no green
    # Nothing drawn: the image is untouched (no channel permutation, unlike PhotoMetricDistortion).
    np.testing.assert_array_equal(transform.apply(img, off), img)


def test_rejects_what_it_cannot_augment():
    with pytest.raises(ValueError, match='img_format'):
        ColorAugSSDTransform(img_format='HSV')
    with pytest.raises(ValueError, match='float32 .*a.jpg'):
        ColorAugSSDTransform()(dict(img=np.zeros((4, 4, 3), np.float32), img_path='a.jpg'))
