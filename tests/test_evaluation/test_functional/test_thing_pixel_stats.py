# Copyright (c) mmibs contributors. All rights reserved.
"""Acc_th / Prec_th (``docs/metrics.md``) on hand-made 8 x 8 maps, values worked by hand.

Layout shared by the cases (rows 2-5 hold the cars)::

    car A = rows 2-5, cols 0-4 (4 x 5 = 20 px)      car B = rows 2-5, cols 5-7 (4 x 3 = 12 px)
    road  = rows 0-1 and 6-7 (32 px)
"""
import numpy as np
import pytest

from mmibs.evaluation.functional import (PanopticStats, panoptic_stats_single,
                                         summarize_panoptic_stats)

ROAD, PERSON, CAR = 7, 24, 26
CATEGORIES = [  # stuff first, as Cityscapes' json
    dict(id=ROAD, name='road', isthing=0),
    dict(id=PERSON, name='person', isthing=1),
    dict(id=CAR, name='car', isthing=1),
]
K_CAR, K_PERSON = 2, 1  # column of each category in PanopticStats


def two_cars():
    gt = np.full((8, 8), 1, dtype=np.uint32)  # 1: road
    gt[2:6, 0:5] = 2  # car A, 20 px
    gt[2:6, 5:8] = 3  # car B, 12 px
    segments = [
        dict(id=1, category_id=ROAD, iscrowd=0),
        dict(id=2, category_id=CAR, iscrowd=0),
        dict(id=3, category_id=CAR, iscrowd=0)
    ]
    return gt, segments


def road_pred(pred_ids):
    """Road prediction wherever the given map is still 0; returns the segments of the map."""
    pred_ids[pred_ids == 0] = 100
    return [dict(id=100, category_id=ROAD)]


def car_pixel_stats(stats):
    return (stats.pix_tp_gt[K_CAR], stats.pix_fn[K_CAR], stats.pix_tp_pred[K_CAR],
            stats.pix_fp[K_CAR])


@pytest.mark.parametrize('matching', ['pq', 'max_overlap'])
def test_perfect_prediction(matching):
    gt, gt_segments = two_cars()
    pred = np.where(gt == 1, 0, gt + 10).astype(np.uint32)  # same cars, other ids
    pred_segments = [dict(id=12, category_id=CAR), dict(id=13, category_id=CAR)]
    pred_segments += road_pred(pred)
    stats = panoptic_stats_single(gt, gt_segments, pred, pred_segments, CATEGORIES, matching)
    # TP = 20 + 12, nothing missed, nothing spilled
    assert car_pixel_stats(stats) == (32, 0, 32, 0)
    results = summarize_panoptic_stats(stats)
    assert results['Acc_th'] == results['Prec_th'] == 100.0
    assert results['PQ'] == 100.0


def test_merged_prediction():
    gt, gt_segments = two_cars()
    pred = np.zeros((8, 8), dtype=np.uint32)
    pred[2:6, :] = 50  # one car segment over both cars, 32 px
    pred_segments = [dict(id=50, category_id=CAR)] + road_pred(pred)

    stats = panoptic_stats_single(gt, gt_segments, pred, pred_segments, CATEGORIES, 'pq')
    # PQ matching: IoU(A, p) = 20 / 32 = 0.625 > 0.5 -> matched; IoU(B, p) = 12 / 32 unmatched.
    # TP = |A & p| = 20; FN = (20 - 20) + (12 - 0) = 12; FP = |p| - |p & A| = 32 - 20 = 12
    assert car_pixel_stats(stats) == (20, 12, 20, 12)
    assert (stats.tp[K_CAR], stats.fn[K_CAR], stats.fp[K_CAR]) == (1, 1, 0)
    results = summarize_panoptic_stats(stats)
    assert results['Acc_th'] == pytest.approx(100 * 20 / 32)  # 62.5
    assert results['Prec_th'] == pytest.approx(100 * 20 / 32)  # 62.5

    stats = panoptic_stats_single(gt, gt_segments, pred, pred_segments, CATEGORIES, 'max_overlap')
    # max overlap: A -> p (20), B -> p (12): nothing missed; p -> A (20): 12 px spilled onto B
    assert car_pixel_stats(stats) == (32, 0, 20, 12)
    results = summarize_panoptic_stats(stats)
    assert results['Acc_th'] == 100.0
    assert results['Prec_th'] == pytest.approx(100 * 20 / 32)


def test_split_prediction():
    gt, gt_segments = two_cars()
    pred = np.zeros((8, 8), dtype=np.uint32)
    pred[2:6, 0:3] = 51  # left part of car A, 12 px
    pred[2:6, 3:5] = 52  # right part of car A, 8 px
    pred[2:6, 5:8] = 53  # car B, 12 px
    pred_segments = [dict(id=i, category_id=CAR) for i in (51, 52, 53)] + road_pred(pred)

    stats = panoptic_stats_single(gt, gt_segments, pred, pred_segments, CATEGORIES, 'pq')
    # IoU(A, p51) = 12 / 20 = 0.6 matched, IoU(A, p52) = 8 / 20 unmatched, IoU(B, p53) = 1.
    # TP = 12 + 12 = 24; FN = (20 - 12) + 0 = 8; FP = 0 + (8 - 0) + 0 = 8
    assert car_pixel_stats(stats) == (24, 8, 24, 8)
    results = summarize_panoptic_stats(stats)
    assert results['Acc_th'] == pytest.approx(75.0)  # 24 / 32
    assert results['Prec_th'] == pytest.approx(75.0)

    stats = panoptic_stats_single(gt, gt_segments, pred, pred_segments, CATEGORIES, 'max_overlap')
    # A -> p51 (12, 8 missed), B -> p53 (12); p51 -> A (12), p52 -> A (8), p53 -> B (12): no spill
    assert car_pixel_stats(stats) == (24, 8, 32, 0)
    results = summarize_panoptic_stats(stats)
    assert results['Acc_th'] == pytest.approx(75.0)
    assert results['Prec_th'] == 100.0


def crowd_and_void_case():
    gt = np.full((8, 8), 1, dtype=np.uint32)  # road
    gt[0] = 0  # VOID row, 8 px
    gt[2:6, 0:5] = 2  # car A, 20 px
    gt[2:6, 5:8] = 26  # crowd car region, 12 px
    gt_segments = [
        dict(id=1, category_id=ROAD, iscrowd=0),
        dict(id=2, category_id=CAR, iscrowd=0),
        dict(id=26, category_id=CAR, iscrowd=1)
    ]
    pred = np.zeros((8, 8), dtype=np.uint32)
    pred[0] = 60  # the car prediction also covers the VOID row (8 px) ...
    pred[2:6] = 60  # ... car A (20 px) and the crowd region (12 px): 40 px
    pred[7, 0:4] = 61  # a person on the road, 4 px
    pred_segments = [dict(id=60, category_id=CAR), dict(id=61, category_id=PERSON)]
    pred_segments += road_pred(pred)  # road = row 1, row 6, row 7 cols 4-7: 20 px
    return gt, gt_segments, pred, pred_segments


def test_crowd_and_void_regions():
    stats = panoptic_stats_single(*crowd_and_void_case(), CATEGORIES, 'pq')
    # IoU(A, p60) = 20 / (40 + 20 - 20 - 8 on VOID) = 0.625 -> matched.
    # car: TP = 20, FN = 0, FP = |p60| - VOID - crowd car - |p60 & A| = 40 - 8 - 12 - 20 = 0
    assert car_pixel_stats(stats) == (20, 0, 20, 0)
    # person: no ground truth; FP = 4 road pixels
    assert (stats.pix_tp_gt[K_PERSON], stats.pix_fn[K_PERSON], stats.pix_tp_pred[K_PERSON],
            stats.pix_fp[K_PERSON]) == (0, 0, 0, 4)
    results = summarize_panoptic_stats(stats)
    # Acc: person has TP + FN = 0 and is left out -> car only
    assert results['Acc_th'] == 100.0
    # Prec: mean(car 20 / 20, person 0 / 4) = 50; pixel-pooled 20 / 24
    assert results['Prec_th'] == pytest.approx(50.0)
    assert results['Acc_th_pix'] == 100.0
    assert results['Prec_th_pix'] == pytest.approx(100 * 20 / 24)
    # PQ by hand: car IoU 0.625 (TP), person one FP, road: gt 24 px, pred 20 px, all on road ->
    # IoU 20 / 24; stuff-first json order does not matter
    assert results['PQ'] == pytest.approx(100 * (0.625 + 0 + 20 / 24) / 3)
    assert results['PQ_th'] == pytest.approx(100 * 0.625 / 2)
    assert results['PQ_st'] == pytest.approx(100 * 20 / 24)


def test_crowd_of_another_class_is_not_ignored():
    gt = np.full((8, 8), 1, dtype=np.uint32)
    gt[2:6, 5:8] = 26  # crowd car region, 12 px
    gt_segments = [dict(id=1, category_id=ROAD, iscrowd=0), dict(id=26, category_id=CAR, iscrowd=1)]
    pred = np.zeros((8, 8), dtype=np.uint32)
    pred[2:6, 5:8] = 70  # a person on the crowd *car* region: all 12 px are false positives
    pred_segments = [dict(id=70, category_id=PERSON)] + road_pred(pred)
    stats = panoptic_stats_single(gt, gt_segments, pred, pred_segments, CATEGORIES, 'pq')
    assert stats.pix_fp[K_PERSON] == 12
    assert stats.fp[K_PERSON] == 1  # PQ counts it as a false positive too
    # the same segment predicted as a car is excused by the car crowd region
    pred_segments[0]['category_id'] = CAR
    stats = panoptic_stats_single(gt, gt_segments, pred, pred_segments, CATEGORIES, 'pq')
    assert stats.pix_fp[K_CAR] == 0 and stats.fp[K_CAR] == 0


def test_sums_over_images_before_ratios():
    # merged image (car TP 20, FN 12, FP 12) + crowd/void image (car TP 20, FN 0, FP 0)
    gt, gt_segments = two_cars()
    pred = np.zeros((8, 8), dtype=np.uint32)
    pred[2:6, :] = 50
    pred_segments = [dict(id=50, category_id=CAR)] + road_pred(pred)
    total = PanopticStats(CATEGORIES)
    total += panoptic_stats_single(gt, gt_segments, pred, pred_segments, CATEGORIES)
    total += panoptic_stats_single(*crowd_and_void_case(), CATEGORIES)
    results = summarize_panoptic_stats(total, classwise=True)
    # car: 40 / (40 + 12); a mean of per-image ratios would give (62.5 + 100) / 2 = 81.25 instead
    assert results['per_class']['car']['Acc'] == pytest.approx(100 * 40 / 52)
    assert results['per_class']['car']['Prec'] == pytest.approx(100 * 40 / 52)
    assert results['per_class']['person']['Prec'] == 0.0
    assert np.isnan(results['per_class']['person']['Acc'])
    assert 'Acc' not in results['per_class']['road']
    assert results['Acc_th'] == pytest.approx(100 * 40 / 52)  # person left out
    assert results['Prec_th'] == pytest.approx((100 * 40 / 52 + 0) / 2)
    assert results['Prec_th_pix'] == pytest.approx(100 * 40 / (52 + 4))


def test_unknown_matching_mode_is_rejected():
    gt, gt_segments = two_cars()
    with pytest.raises(ValueError, match='matching'):
        panoptic_stats_single(gt, gt_segments, gt, [], CATEGORIES, 'iou')
