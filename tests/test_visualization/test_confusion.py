# Copyright (c) mmibs contributors. All rights reserved.
"""Confusion figures on hand-made 32 x 64 id maps: the best covering segment and its panels."""
import numpy as np
import pytest

from mmibs.visualization.confusion import (_CONTEXT_COLOR, _GT_COLOR, _INSIDE_COLOR,
                                           _OUTSIDE_COLOR, best_covering_segment,
                                           draw_instance_comparison)

CLASSES = ('car', 'person', 'road')  # 2 things, 1 stuff; void label 3
VOID = 3


def naive_best_cover(gt_mask, pred_ids, void_label):
    """Reference: loop over every predicted id with explicit logical ands."""
    best = None
    for pid in sorted(set(pred_ids.ravel().tolist())):
        if pid % 1000 == void_label:
            continue
        pred = pred_ids == pid
        inter = int(np.logical_and(gt_mask, pred).sum())
        if inter == 0:
            continue
        union = int(np.logical_or(gt_mask, pred).sum())
        key = (inter, inter / union)
        if best is None or key > best[0]:
            best = (key, pid, inter, inter / union, inter / pred.sum(), inter / gt_mask.sum())
    return None if best is None else best[1:]


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


def test_best_covering_segment_confused_mask():
    gt, pred = scene()
    car1 = gt == 1000
    match = best_covering_segment(car1, pred, void_label=VOID)
    # hand count: car #1 (384 px) minus the 4 x 6 void corner; the merged mask is 16 x 40 minus
    # the corner (616 px); the union is car #1 plus car #2 (640 px), the corner included
    assert match.pred_id == 1000
    assert match.overlap == 384 - 24
    assert match.iou == pytest.approx((384 - 24) / 640)
    assert match.precision == pytest.approx((384 - 24) / (640 - 24))
    assert match.recall == pytest.approx((384 - 24) / 384)
    ref = naive_best_cover(car1, pred, VOID)
    assert (match.pred_id, match.overlap) == ref[:2]
    np.testing.assert_allclose(match[2:], ref[2:])


def test_best_covering_segment_ties_void_and_miss():
    gt = np.zeros((32, 64), dtype=np.int64)
    gt[:, 10:20] = 1  # 320 px
    pred = np.full((32, 64), 7, dtype=np.int64)
    pred[:, :15] = 5  # overlap 160, area 480
    pred[:, 15:20] = 6  # overlap 160, area 160: same overlap, higher IoU -> wins the tie
    pred[:, 20:] = 9
    match = best_covering_segment(gt == 1, pred)
    assert match.pred_id == 6 and match.overlap == 160
    assert match.iou == pytest.approx(160 / 320)
    assert match.precision == pytest.approx(1.0)
    ref = naive_best_cover(gt == 1, pred, None)
    assert ref[0] == 6 and ref[1] == 160

    # void covers most of the mask: it is never the covering segment
    pred[:, 10:19] = 3
    match = best_covering_segment(gt == 1, pred, void_label=3)
    assert match.pred_id == 6 and match.overlap == 32
    # only void on the mask: no covering segment
    pred[:, 10:20] = 1003
    assert best_covering_segment(gt == 1, pred, void_label=3) == (None, 0, 0.0, 0.0, 0.0)


def test_best_covering_segment_random_maps_match_naive():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pred = rng.integers(0, 4, size=(32, 64)) + 1000 * rng.integers(0, 3, size=(32, 64))
        gt_mask = rng.random((32, 64)) < 0.3
        match = best_covering_segment(gt_mask, pred, void_label=3)
        ref = naive_best_cover(gt_mask, pred, 3)
        assert (match.pred_id, match.overlap) == ref[:2]
        np.testing.assert_allclose(match[2:], ref[2:])


def test_best_covering_segment_bad_input():
    with pytest.raises(ValueError, match='empty'):
        best_covering_segment(np.zeros((32, 64), bool), np.zeros((32, 64), np.int64))
    with pytest.raises(ValueError, match='shape'):
        best_covering_segment(np.ones((32, 64), bool), np.zeros((32, 63), np.int64))
    with pytest.raises(ValueError, match='integer'):
        best_covering_segment(np.ones((32, 64), bool), np.zeros((32, 64), np.float32))


def blended(base, color, alpha):
    """Expected colour of a filled pixel: the float32 blend of the drawing code, as uint8."""
    alpha = np.float32(alpha)
    color = np.asarray(color, np.float32)
    return tuple((np.float32(base) * (1 - alpha) + color * alpha).clip(0, 255).astype(
        np.uint8).tolist())


def count_color(fig, color):
    return int(np.all(fig == np.array(color, np.uint8), axis=-1).sum())


def test_draw_instance_comparison_panels():
    gt, pred = scene()
    img = np.full((32, 64, 3), 100, np.uint8)
    perfect = gt.copy()
    fig = draw_instance_comparison(
        img, gt == 1000, {'baseline': pred, 'ibs': perfect}, classes=CLASSES, gt_label=0,
        context_masks=[gt == 2000], crop=False, panel_width=4.0, dpi=100)
    assert fig.dtype == np.uint8 and fig.shape[1] == 3 * 400
    assert fig.shape[0] == round((4.0 * 32 / 64 + 1.25) * 100)
    third = fig.shape[1] // 3
    gt_fill = blended(100, np.float32(_GT_COLOR) * np.float32(255), 0.45)
    inside = blended(100, np.float32(_INSIDE_COLOR) * np.float32(255), 0.55)
    outside = blended(100, np.float32(_OUTSIDE_COLOR) * np.float32(255), 0.55)
    panels = [fig[:, :third], fig[:, third:2 * third], fig[:, 2 * third:]]
    # panel 1: the GT fill only
    assert count_color(panels[0], gt_fill) > 0.5 * 360 * (400 / 64) ** 2
    assert count_color(panels[0], inside) == 0
    # panel 2 (baseline): the merged mask is inside car #1 and spreads over car #2
    assert count_color(panels[1], inside) > 0.5 * 360 * (400 / 64) ** 2
    assert count_color(panels[1], outside) > 0.5 * 256 * (400 / 64) ** 2
    # panel 3 (ibs): exactly car #1, nothing outside
    assert count_color(panels[2], inside) > 0.5 * 384 * (400 / 64) ** 2
    assert count_color(panels[2], outside) == 0
    # the context outline colour is drawn (dashed, antialiased: look for near matches)
    ctx = np.array(_CONTEXT_COLOR) * 255
    assert (np.abs(fig.astype(int) - ctx).max(-1) < 30).sum() > 50
    # the crop keeps every panel the same size and covers the instance and the spread
    cropped = draw_instance_comparison(img, gt == 1000, {'baseline': pred}, classes=CLASSES,
                                       gt_label=0)
    assert cropped.shape[1] == 2 * 450
    with pytest.raises(ValueError, match='empty'):
        draw_instance_comparison(img, gt == 1000, {})
