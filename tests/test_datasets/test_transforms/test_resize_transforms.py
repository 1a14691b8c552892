# Copyright (c) mmibs contributors. All rights reserved.
"""RandomShortestEdgeResize and ResizeToSegmentScale against the released formulas."""
import math

import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes

from mmibs.datasets.transforms import (RandomShortestEdgeResize, ResizeToSegmentScale,
                                       segment_scale_ratio)


def _results(h, w):
    return dict(
        img=np.zeros((h, w, 3), dtype=np.uint8),
        img_shape=(h, w),
        gt_seg_map=np.zeros((h, w), dtype=np.uint8),
        gt_bboxes=HorizontalBoxes(np.array([[10, 10, 30, 20]], dtype=np.float32)))


def test_random_shortest_edge_resize():
    np.random.seed(0)
    transform = RandomShortestEdgeResize(short_edge_range=(40, 60), max_size=110)
    shorts = set()
    for _ in range(300):
        out = transform(_results(30, 50))  # landscape: the short edge is the height
        h, w = out['img'].shape[:2]
        assert out['gt_seg_map'].shape == (h, w)
        assert w == int(h / 30 * 50 + 0.5)  # aspect ratio kept (long edge <= 100 < 110)
        shorts.add(h)
    assert shorts == set(range(40, 61))  # every integer of the range, and only those
    # A wide image hits max_size: long edge 110, short edge scaled with it.
    out = transform(_results(30, 100))
    assert out['img'].shape[:2] == (33, 110)
    choice = RandomShortestEdgeResize(short_edge_choices=(32, 64))
    assert {choice(_results(50, 20))['img'].shape[1] for _ in range(50)} == {32, 64}
    with pytest.raises(ValueError, match='exactly one'):
        RandomShortestEdgeResize()


def _detectron2_shape(h, w, short, max_size):
    """detectron2's ResizeShortestEdge.get_output_shape, written out: (new h, new w)."""
    scale = short / min(h, w)
    new_h, new_w = (short, scale * w) if h < w else (scale * h, short)
    if max(new_h, new_w) > max_size:
        scale = max_size / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


@pytest.mark.parametrize('hw', [(3000, 4000), (4000, 3000), (1536, 2048), (600, 3264), (2448, 3264),
                                (719, 1280)])
def test_short_edge_choices_follow_the_release(hw):
    """The Vistas recipe: short side from 1024, 1152, ..., 2048, long side <= 4096, each choice
    giving detectron2's output shape (the released Panoptic FCN-IBS Vistas configs)."""
    choices = tuple(range(1024, 2049, 128))
    transform = RandomShortestEdgeResize(short_edge_choices=choices, max_size=4096)
    h, w = hw
    np.random.seed(0)
    seen = {}
    for _ in range(200):
        results = _results(h // 8, w // 8)  # small arrays; the shape formula is checked below
        short = transform._random_short_edge()
        seen[short] = seen.get(short, 0) + 1
        assert transform._get_output_shape(np.zeros((h, w)), short)[::-1] == \
            _detectron2_shape(h, w, short, 4096)
    assert set(seen) == set(choices)  # only and every release choice
    out = transform(results)
    assert out['img'].shape[:2] in {_detectron2_shape(h // 8, w // 8, s, 4096) for s in choices}


def _naive_ratio(bw, bh, h, w, s, lo, hi, top):
    r = s / math.sqrt(bw * bh)
    r = min(max(r, lo / min(h, w)), hi / min(h, w))
    return top / max(h, w) if r * max(h, w) > top else r


@pytest.mark.parametrize('box,scale', [((20, 10), 64), ((2, 2), 512), ((400, 300), 32),
                                       ((8, 8), 8)])
def test_segment_scale_ratio(box, scale):
    args = (*box, 100, 200, scale, 50, 300, 500)
    assert segment_scale_ratio(*args) == pytest.approx(_naive_ratio(*args))


def test_resize_to_segment_scale():
    transform = ResizeToSegmentScale(
        side_min=20,
        side_max=400,
        overall_max=800,
        stuff_resize=dict(type='Resize', scale_factor=0.5, keep_ratio=True))
    results = _results(100, 200)
    results['crop_sampling'] = dict(is_thing=True, scale=40, bbox=[10, 10, 30, 20])
    out = transform(results)
    # sqrt(20 * 10) -> 40: r = 40 / sqrt(200) = 2.828...; box area scales by r^2.
    r = 40 / math.sqrt(200)
    assert out['img'].shape[:2] == (int(100 * r + 0.5), int(200 * r + 0.5))
    x1, y1, x2, y2 = out['gt_bboxes'].numpy()[0]
    assert math.sqrt((x2 - x1) * (y2 - y1)) == pytest.approx(40, rel=0.01)
    assert out['crop_sampling']['resize_ratio'][0] == pytest.approx(r, rel=0.01)
    stuff = _results(100, 200)
    stuff['crop_sampling'] = dict(is_thing=False, scale=40, bbox=[0, 0, 200, 50])
    assert transform(stuff)['img'].shape[:2] == (50, 100)  # the ordinary (stuff) resize
    with pytest.raises(KeyError, match='crop_sampling'):
        transform(_results(100, 200))
