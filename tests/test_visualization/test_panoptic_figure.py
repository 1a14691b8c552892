# Copyright (c) mmibs contributors. All rights reserved.
"""Panoptic figures on hand-made 32 x 64 id maps: names, unique colours, outlines, labels."""
import numpy as np
import pytest

from mmibs.visualization.panoptic_figure import (describe_segments, draw_panoptic,
                                                 instance_palette, label_anchor,
                                                 resize_for_display, segment_boundaries)

CLASSES = ('car', 'person', 'road')  # 2 things, 1 stuff; void label 3
VOID = 3
PALETTE = [(0, 0, 142), (0, 0, 142), (128, 64, 128)]  # car and person share a colour on purpose


def scene():
    """Two touching cars, a person, road below, a void strip; ids in mmdet's convention."""
    gt = np.full((32, 64), 2, dtype=np.int64)  # road
    gt[:8] = VOID
    gt[8:24, 4:28] = 1000  # car #1, 16 x 24 = 384 px
    gt[8:24, 28:44] = 2000  # car #2, touching car #1, 16 x 16 = 256 px
    gt[10:20, 50:56] = 1001  # person, 60 px
    pred = gt.copy()
    pred[8:24, 4:44] = 1000  # one confused mask over both cars
    pred[8:12, 4:10] = VOID  # a void corner inside car #1
    return gt, pred


def blended(base, color, alpha):
    """Expected colour of a filled pixel: the float32 blend of the drawing code, as uint8."""
    alpha = np.float32(alpha)
    color = np.asarray(color, np.float32)
    return tuple((np.float32(base) * (1 - alpha) + color * alpha).clip(0, 255).astype(
        np.uint8).tolist())


def count_color(fig, color):
    return int(np.all(fig == np.array(color, np.uint8), axis=-1).sum())


def test_describe_segments_names_and_unique_colours():
    gt, _ = scene()
    gt[24:28, 0:10] = 0  # a crowd region of cars (inst 0 of a thing class)
    segments = describe_segments(gt, CLASSES, PALETTE, num_things=2)
    by_id = {s.id: s for s in segments}
    assert set(by_id) == {2, 1000, 2000, 1001, 0}  # void left out
    assert [s.area for s in segments] == sorted((s.area for s in segments), reverse=True)
    assert by_id[1000].text == 'car #1' and by_id[1000].area == 384  # the larger car
    assert by_id[2000].text == 'car #2' and by_id[2000].area == 256
    assert by_id[1001].text == 'person #1'
    assert by_id[2].text == 'road' and by_id[2].color == PALETTE[2]
    assert by_id[0].text == 'car (crowd)'
    colors = [s.color for s in segments]
    assert len(set(colors)) == len(colors)  # person and crowd-car share the palette colour
    assert by_id[1000].color != by_id[2000].color
    with pytest.raises(ValueError, match='label 5'):
        describe_segments(np.full((4, 4), 5), CLASSES, PALETTE)


def test_instance_palette_distinct_shades():
    shades = instance_palette((0, 0, 142), 6)
    assert len(set(shades)) == 6
    lightness = [sum(s) for s in shades]
    assert lightness == sorted(lightness)  # darkest to lightest
    assert instance_palette((10, 20, 30), 1) == [(10, 20, 30)]


def test_label_anchor_is_inside():
    mask = np.zeros((32, 64), bool)
    mask[2:30, 2:8] = True  # an L shape: the centroid would fall outside it
    mask[24:30, 2:60] = True
    y, x = label_anchor(mask)
    assert mask[y, x]
    ring = np.zeros((32, 64), bool)
    ring[0:32, 0:64] = True
    ring[8:24, 16:48] = False
    y, x = label_anchor(ring)
    assert ring[y, x]


def test_draw_panoptic_colours_every_segment():
    gt, _ = scene()
    img = np.full((32, 64, 3), 100, np.uint8)
    fig = draw_panoptic(img, gt, CLASSES, PALETTE, num_things=2, title='scene', width=640)
    assert fig.dtype == np.uint8 and fig.ndim == 3 and fig.shape[1] == 640
    # the image is 10x upscaled: each segment shows its own blended colour, void the raw image
    segments = describe_segments(gt, CLASSES, PALETTE, num_things=2)
    expected = {s.id: blended(100, s.color, 0.6) for s in segments}
    assert len(set(expected.values())) == len(expected)
    for seg in segments:
        assert count_color(fig, expected[seg.id]) > seg.area * 10 * 10 * 0.2, seg.text
    assert count_color(fig, (100, 100, 100)) > 8 * 64 * 100 * 0.8  # void rows untouched
    with pytest.raises(ValueError, match='image size'):
        draw_panoptic(img, gt[:16], CLASSES, PALETTE)


def test_segment_boundaries_and_display_resize():
    ids = np.zeros((32, 64), np.int64)
    ids[:, 20:] = 1000
    edges = segment_boundaries(ids)
    # both sides of the change at column 20, nothing else
    expected = np.zeros((32, 64), bool)
    expected[:, 19:21] = True
    np.testing.assert_array_equal(edges, expected)
    assert segment_boundaries(ids, thickness=4)[:, 18:22].all()

    img = np.arange(32 * 64 * 3, dtype=np.int64).reshape(32, 64, 3).astype(np.uint8)
    big_img, big_ids = resize_for_display(img, ids, 640)
    assert big_ids.shape == (320, 640) and big_img.shape == (320, 640, 3)
    # nearest neighbours: every output pixel is its source pixel, 10 x 10 times
    np.testing.assert_array_equal(big_ids, np.kron(ids, np.ones((10, 10), np.int64)))
    np.testing.assert_array_equal(big_img[::10, ::10], img)
    small_img, small_ids = resize_for_display(img, ids, 32)
    assert small_ids.shape == (16, 32) and small_img.shape == (16, 32, 3)
    assert set(np.unique(small_ids)) == {0, 1000}
    assert (small_ids[:, :10] == 0).all() and (small_ids[:, 10:] == 1000).all()
