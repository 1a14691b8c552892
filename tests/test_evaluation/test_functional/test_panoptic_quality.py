# Copyright (c) mmibs contributors. All rights reserved.
"""PQ statistics against cityscapesscripts' and panopticapi's evaluators on the same files."""
import contextlib
import copy
import io
import json
import os.path as osp

import numpy as np
import pytest
import torch
from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as cs_eval
from panopticapi import evaluation as pa_eval
from panopticapi import utils as pa_utils
from PIL import Image

from mmibs.evaluation.functional import (PanopticStats, id2rgb, panoptic_stats_single,
                                         read_panoptic_png, rgb2id, summarize_panoptic_stats)
from projects.toy_cityscapes.synthetic import CITYSCAPES_CATEGORIES, write_panoptic_pairs

ROAD, PERSON, CAR = 7, 24, 26
CATEGORIES = [
    dict(id=ROAD, name='road', isthing=0),
    dict(id=PERSON, name='person', isthing=1),
    dict(id=CAR, name='car', isthing=1),
]


def official_stats(module, gt_json, gt_folder, pred_json, pred_folder):
    """Run an official ``pq_compute_single_core`` (quietly) on written files."""
    with open(gt_json) as f:
        gt = json.load(f)
    with open(pred_json) as f:
        preds = {ann['image_id']: ann for ann in json.load(f)['annotations']}
    pairs = [(copy.deepcopy(ann), copy.deepcopy(preds[ann['image_id']]))
             for ann in gt['annotations']]
    categories = {cat['id']: cat for cat in gt['categories']}
    with contextlib.redirect_stdout(io.StringIO()):
        return module.pq_compute_single_core(0, pairs, gt_folder, pred_folder, categories)


def ours(gt_json, gt_folder, pred_json, pred_folder, matching='pq'):
    with open(gt_json) as f:
        gt = json.load(f)
    with open(pred_json) as f:
        preds = {ann['image_id']: ann for ann in json.load(f)['annotations']}
    total = PanopticStats(gt['categories'])
    for ann in gt['annotations']:
        pred = preds[ann['image_id']]
        total += panoptic_stats_single(
            read_panoptic_png(osp.join(gt_folder, ann['file_name'])), ann['segments_info'],
            read_panoptic_png(osp.join(pred_folder, pred['file_name'])), pred['segments_info'],
            gt['categories'], matching)
    return total


def assert_same_stats(official, stats):
    for k, cat_id in enumerate(stats.cat_ids):
        ref = official.pq_per_cat[int(cat_id)]
        assert (ref.tp, ref.fp, ref.fn) == (stats.tp[k], stats.fp[k], stats.fn[k]), int(cat_id)
        assert abs(ref.iou - stats.iou[k]) < 1e-9


def assert_same_results(official_results, results):
    for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        for key in ('pq', 'sq', 'rq'):
            assert abs(100 * official_results[group][key] - results[key.upper() + suffix]) < 1e-9
        assert official_results[group]['n'] == results['N' + suffix]


@pytest.mark.parametrize('id_offset', [None, 1 << 23])
def test_pq_equals_official_evaluators(tmp_path, id_offset):
    # id_offset=None: Cityscapes ids (small), 2**23: COCO-like ids (random colours up to 2**24)
    paths = write_panoptic_pairs(
        str(tmp_path),
        num_images=4,
        height=64,
        width=128,
        seed=7,
        num_things=14,
        id_offset=id_offset)
    stats = ours(**paths)
    assert stats.tp.sum() > 5 and stats.fp.sum() > 5 and stats.fn.sum() > 5  # not degenerate
    categories = {cat['id']: cat for cat in CITYSCAPES_CATEGORIES}
    results = summarize_panoptic_stats(stats)
    for module in (cs_eval, pa_eval):
        official = official_stats(module, **paths)
        assert_same_stats(official, stats)
        assert_same_results(cs_eval.average_pq(official, categories), results)


def write_pair(root, gt, gt_segments, pred, pred_segments, categories=CATEGORIES):
    """Write one hand-made pair in COCO-panoptic format (gt ``area`` from the PNG unless given)."""
    gt_segments = [
        dict(seg, area=seg.get('area', int((gt == seg['id']).sum()))) for seg in gt_segments
    ]
    paths = dict(
        gt_json=osp.join(root, 'gt.json'),
        gt_folder=root,
        pred_json=osp.join(root, 'pred.json'),
        pred_folder=root)
    Image.fromarray(pa_utils.id2rgb(gt)).save(osp.join(root, 'gt.png'))
    Image.fromarray(pa_utils.id2rgb(pred)).save(osp.join(root, 'pred.png'))
    with open(paths['gt_json'], 'w') as f:
        json.dump(
            dict(
                annotations=[dict(image_id='a', file_name='gt.png', segments_info=gt_segments)],
                categories=categories), f)
    with open(paths['pred_json'], 'w') as f:
        json.dump(
            dict(
                annotations=[dict(image_id='a', file_name='pred.png', segments_info=pred_segments)
                             ]), f)
    return paths


def edge_cases():
    """(name, gt, gt_segments, pred, pred_segments) covering each rule of the official code."""
    road = dict(id=1, category_id=ROAD, iscrowd=0)
    base = np.ones((8, 8), dtype=np.uint32)
    cases = []

    gt = base.copy()
    gt[:, :4] = 0  # half VOID
    pred = np.full((8, 8), 5, dtype=np.uint32)
    pred[:, 5:] = 6  # a car mostly on VOID is no false positive; on road it is one
    cases.append(
        ('fp_on_void', gt, [road], pred, [dict(id=5, category_id=CAR),
                                          dict(id=6, category_id=CAR)]))

    gt = base.copy()
    gt[:4, :4], gt[4:, :4] = 26, 27  # two crowd car regions: only the last one excuses
    pred = np.ones((8, 8), dtype=np.uint32)
    pred[:4, :4], pred[4:, :4] = 5, 6
    cases.append(
        ('two_crowd_regions', gt,
         [road,
          dict(id=26, category_id=CAR, iscrowd=1),
          dict(id=27, category_id=CAR, iscrowd=1)], pred,
         [dict(id=1, category_id=ROAD),
          dict(id=5, category_id=CAR),
          dict(id=6, category_id=CAR)]))

    gt = base.copy()
    gt[:3, :3] = 9  # ids in the PNG but not in the json: neither segment nor VOID
    gt[5:, 5:] = 2
    pred = base.copy()
    pred[:3, :3] = 5
    cases.append(('unknown_gt_ids_and_missing_gt_segment', gt, [
        road,
        dict(id=2, category_id=CAR, iscrowd=0),
        dict(id=3, category_id=PERSON, iscrowd=0, area=5)
    ], pred, [dict(id=1, category_id=ROAD),
              dict(id=5, category_id=CAR)]))

    gt = base.copy()
    gt[2:6, 2:6] = 2
    pred = base.copy()
    pred[2:6, 3:7] = 5  # IoU 12 / 20 but the json claims a larger gt area -> no match
    cases.append(('json_area_is_used', gt, [road,
                                            dict(id=2, category_id=CAR, iscrowd=0, area=30)], pred,
                  [dict(id=1, category_id=ROAD),
                   dict(id=5, category_id=CAR)]))
    return cases


@pytest.mark.parametrize('case', edge_cases(), ids=lambda case: case[0])
def test_edge_cases_equal_official(tmp_path, case):
    _, gt, gt_segments, pred, pred_segments = case
    paths = write_pair(str(tmp_path), gt, gt_segments, pred, pred_segments)
    stats = ours(**paths)
    for module in (cs_eval, pa_eval):
        assert_same_stats(official_stats(module, **paths), stats)


def test_official_end_to_end(tmp_path):
    """The full official entry points (multi-process) on the same files."""
    paths = write_panoptic_pairs(str(tmp_path), num_images=3, height=48, width=96, seed=1)
    results = summarize_panoptic_stats(ours(**paths))
    with contextlib.redirect_stdout(io.StringIO()):
        cs_results = cs_eval.evaluatePanoptic(paths['gt_json'], paths['gt_folder'],
                                              paths['pred_json'], paths['pred_folder'],
                                              str(tmp_path / 'cs_results.json'))
        pa_results = pa_eval.pq_compute(paths['gt_json'], paths['pred_json'], paths['gt_folder'],
                                        paths['pred_folder'])
    assert_same_results(cs_results, results)
    assert_same_results(pa_results, results)


def test_rgb_id_round_trip():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1 << 24, (5, 7), dtype=np.int64)
    rgb = id2rgb(ids)
    np.testing.assert_array_equal(rgb, pa_utils.id2rgb(ids))
    np.testing.assert_array_equal(rgb2id(rgb), pa_utils.rgb2id(rgb))
    with pytest.raises(ValueError, match='2\\*\\*24'):
        id2rgb(np.array([[1 << 24]]))


def test_read_panoptic_png(tmp_path):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 1 << 24, (6, 9), dtype=np.int64)
    Image.fromarray(pa_utils.id2rgb(ids)).save(tmp_path / 'rgb.png')
    Image.fromarray(pa_utils.id2rgb(ids)).convert('RGBA').save(tmp_path / 'rgba.png')
    np.testing.assert_array_equal(read_panoptic_png(str(tmp_path / 'rgb.png')), ids)
    np.testing.assert_array_equal(read_panoptic_png(str(tmp_path / 'rgba.png')), ids)
    with pytest.raises(FileNotFoundError, match='missing.png'):
        read_panoptic_png(str(tmp_path / 'missing.png'))


def test_invalid_predictions_are_named():
    gt = np.ones((4, 4), dtype=np.uint32)
    gt_segments = [dict(id=1, category_id=ROAD, iscrowd=0)]
    pred = np.full((4, 4), 5, dtype=np.uint32)
    with pytest.raises(KeyError, match=r'\[5\] are in the PNG but not in segments_info'):
        panoptic_stats_single(gt, gt_segments, pred, [], CATEGORIES, image_id='x')
    with pytest.raises(KeyError, match=r'\[6\] are in segments_info but not in the PNG'):
        panoptic_stats_single(gt, gt_segments, pred,
                              [dict(id=5, category_id=ROAD),
                               dict(id=6, category_id=ROAD)], CATEGORIES)
    with pytest.raises(KeyError, match='unknown category_id 99'):
        panoptic_stats_single(gt, gt_segments, pred, [dict(id=5, category_id=99)], CATEGORIES)
    with pytest.raises(ValueError, match='reserved for VOID'):
        panoptic_stats_single(gt, [dict(id=0, category_id=ROAD)], pred,
                              [dict(id=5, category_id=ROAD)], CATEGORIES)
    with pytest.raises(ValueError, match='differ in size'):
        panoptic_stats_single(gt, gt_segments, pred[:2], [dict(id=5, category_id=ROAD)], CATEGORIES)


def test_semantic_areas_equal_mmseg(tmp_path):
    from mmseg.evaluation.metrics import IoUMetric  # a test-only dependency

    paths = write_panoptic_pairs(str(tmp_path), num_images=2, height=48, width=96, seed=3)
    with open(paths['gt_json']) as f:
        gt = json.load(f)
    with open(paths['pred_json']) as f:
        preds = {ann['image_id']: ann for ann in json.load(f)['annotations']}
    label_of = {cat['id']: k for k, cat in enumerate(gt['categories'])}
    num_classes = len(label_of)
    for ann in gt['annotations']:
        pred_ann = preds[ann['image_id']]
        gt_ids = read_panoptic_png(osp.join(paths['gt_folder'], ann['file_name']))
        pred_ids = read_panoptic_png(osp.join(paths['pred_folder'], pred_ann['file_name']))
        stats = panoptic_stats_single(gt_ids, ann['segments_info'], pred_ids,
                                      pred_ann['segments_info'], gt['categories'])
        # naive semantic maps: 255 ignored in the ground truth, num_classes = void prediction
        gt_sem = np.full(gt_ids.shape, 255, dtype=np.int64)
        for seg in ann['segments_info']:
            gt_sem[gt_ids == seg['id']] = label_of[seg['category_id']]
        pred_sem = np.full(pred_ids.shape, num_classes, dtype=np.int64)
        for seg in pred_ann['segments_info']:
            pred_sem[pred_ids == seg['id']] = label_of[seg['category_id']]
        intersect, union, area_pred, area_label = IoUMetric.intersect_and_union(
            torch.from_numpy(pred_sem), torch.from_numpy(gt_sem), num_classes, 255)
        np.testing.assert_array_equal(stats.sem_intersect, intersect.numpy())
        np.testing.assert_array_equal(stats.sem_pred, area_pred.numpy())
        np.testing.assert_array_equal(stats.sem_label, area_label.numpy())
        assert (stats.sem_intersect > 0).sum() > 5


def test_empty_sides_and_wide_ids():
    """No ground-truth segment, no prediction, and uint64 ids beyond 2**32."""
    void = np.zeros((4, 4), dtype=np.uint64)
    big = np.full((4, 4), 1 << 40, dtype=np.uint64)
    big[0] = 0
    pred_segments = [dict(id=1 << 40, category_id=CAR)]
    stats = panoptic_stats_single(void, [], big, pred_segments, CATEGORIES)
    assert stats.fp.tolist() == [0, 0, 0]  # entirely on VOID: ignored
    assert stats.pix_fp.tolist() == [0, 0, 0] and stats.sem_pred.tolist() == [0, 0, 0]
    gt_segments = [dict(id=1 << 40, category_id=CAR, iscrowd=0)]
    stats = panoptic_stats_single(big, gt_segments, void, [], CATEGORIES)
    assert stats.fn.tolist() == [0, 0, 1] and stats.pix_fn.tolist() == [0, 0, 12]
    stats = panoptic_stats_single(big, gt_segments, big, pred_segments, CATEGORIES)
    assert stats.tp.tolist() == [0, 0, 1] and stats.iou[2] == 1.0
    # 2**53 + 1 is not a float64: a float comparison would take it for the json's 2**53
    near = np.full((2, 2), (1 << 53) + 1, dtype=np.uint64)
    with pytest.raises(KeyError, match='in the PNG but not in segments_info'):
        panoptic_stats_single(near, [], near, [dict(id=1 << 53, category_id=ROAD)], CATEGORIES)
