# Copyright (c) mmibs contributors. All rights reserved.
"""projects/toy_cityscapes/thing_errors.py: every kind of thing error on hand-drawn maps, and the
TP / FP / FN counts against mmibs' panoptic metric on the same maps."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmibs.evaluation.functional.panoptic_quality import panoptic_stats_single
from projects.toy_cityscapes import thing_errors

ROAD, PERSON, CAR = 7, 24, 26
CATEGORIES = [dict(id=ROAD, name='road', isthing=0), dict(id=PERSON, name='person', isthing=1),
              dict(id=CAR, name='car', isthing=1)]
THINGS = {PERSON, CAR}


def segments(ids, cats, crowd=()):
    return {i: dict(id=i, category_id=c, iscrowd=int(i in crowd)) for i, c in zip(ids, cats)}


def image_one():
    """Two touching cars A, B (the left one's segment swallows half of B), a car C found with a
    fragment beside it, a person missed, a car on the road, a car on void (ignored)."""
    gt = np.full((20, 20), 1, np.int64)  # road
    gt[0:10, 0:10] = 26000  # car A, 100 px
    gt[0:10, 10:20] = 26001  # car B, 100 px
    gt[10:15, 0:5] = 24000  # person P, 25 px
    gt[15:20, 0:10] = 26002  # car C, 50 px
    gt[10:15, 10:15] = 0  # void
    pred = np.full((20, 20), 1, np.int64)  # road
    pred[0:10, 0:15] = 10  # X: A + half of B -> IoU(A) 100/150, TP
    pred[0:10, 16:20] = 11  # Y: 40 px of B -> IoU 0.4; B is covered most by X: merged
    pred[15:20, 0:8] = 12  # W: 40 of C's 50 px -> TP
    pred[15:20, 8:10] = 13  # V: the rest of C: a fragment
    pred[15:20, 15:20] = 14  # Z: a car on the road: spurious
    pred[10:15, 10:15] = 15  # U: a car on void: ignored
    gt_segs = segments([1, 26000, 26001, 24000, 26002], [ROAD, CAR, CAR, PERSON, CAR])
    pred_segs = segments([1, 10, 11, 12, 13, 14, 15], [ROAD, CAR, CAR, CAR, CAR, CAR, CAR])
    return gt, gt_segs, pred, pred_segs


def image_two():
    """A car whose best covering segment spreads over the road: no match, and its FP."""
    gt = np.full((10, 20), 1, np.int64)
    gt[0:10, 0:10] = 26000  # 100 px
    pred = np.full((10, 20), 1, np.int64)
    pred[0:5, 0:19] = 20  # 50 px on the car, 45 on the road: IoU 50/145
    return (gt, segments([1, 26000], [ROAD, CAR]), pred, segments([1, 20], [ROAD, CAR]))


def test_each_error_kind():
    out = thing_errors.image_errors(*image_one(), THINGS)
    total = {k: sum(c.values()) for k, c in out.items()}
    assert (total['tp'], total['fn'], total['fp']) == (2, 2, 3)
    assert (out['merged'][CAR], out['missed'][PERSON], out['unmatched'][CAR]) == (1, 1, 0)
    assert (out['fragment'][CAR], out['on_unmatched'][CAR], out['spurious'][CAR]) == (1, 1, 1)
    out = thing_errors.image_errors(*image_two(), THINGS)
    assert (out['fn'][CAR], out['unmatched'][CAR], out['fp'][CAR], out['on_unmatched'][CAR]) == (
        1, 1, 1, 1)


def image_three():
    """Two touching cars under one predicted segment: both unmatched, one spanning FP."""
    gt = np.full((10, 20), 1, np.int64)
    gt[0:5, 0:10], gt[5:10, 0:10] = 26000, 26001  # 50 px each
    pred = np.full((10, 20), 1, np.int64)
    pred[0:10, 0:10] = 30  # IoU 50/100 with each: no match
    return (gt, segments([1, 26000, 26001], [ROAD, CAR, CAR]), pred,
            segments([1, 30], [ROAD, CAR]))


def test_one_segment_over_two_instances_is_spanning():
    out = thing_errors.image_errors(*image_three(), THINGS)
    assert (out['fn'][CAR], out['unmatched'][CAR]) == (2, 2)
    assert (out['fp'][CAR], out['on_unmatched'][CAR], out['fp_spanning'][CAR]) == (1, 1, 1)
    # a segment over one instance and half of another is no spanning FP
    assert sum(thing_errors.image_errors(*image_one(), THINGS)['fp_spanning'].values()) == 0


@pytest.mark.parametrize('image', [image_one, image_two, image_three])
def test_counts_equal_the_panoptic_metric(image):
    gt, gt_segs, pred, pred_segs = image()
    out = thing_errors.image_errors(gt, gt_segs, pred, pred_segs, THINGS)
    stats = panoptic_stats_single(gt, list(gt_segs.values()), pred, list(pred_segs.values()),
                                  CATEGORIES)
    for i, cat in enumerate(c['id'] for c in CATEGORIES):
        if cat in THINGS:
            assert (out['tp'][cat], out['fp'][cat], out['fn'][cat]) == (
                stats.tp[i], stats.fp[i], stats.fn[i]), cat
    # the kinds split the errors exactly
    for cat in THINGS:
        assert sum(out[k][cat] for k in thing_errors.FN_KINDS) == out['fn'][cat]
        assert sum(out[k][cat] for k in thing_errors.FP_KINDS) == out['fp'][cat]


def write_panoptic(folder, name, maps):
    """maps: [(image_id, ids, segs)] -> COCO-panoptic json + RGB-id PNGs."""
    png_dir = osp.join(folder, name)
    os.makedirs(png_dir)
    anns = []
    for image_id, ids, segs in maps:
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
        Image.fromarray(rgb).save(osp.join(png_dir, f'{image_id}.png'))
        anns.append(dict(image_id=image_id, file_name=f'{image_id}.png',
                         segments_info=list(segs.values())))
    path = osp.join(folder, f'{name}.json')
    with open(path, 'w') as f:
        json.dump(dict(annotations=anns, categories=CATEGORIES), f)
    return path, png_dir


def test_command_line_sums_images_and_recomputes_rq(tmp_path, capsys):
    (g1, s1, p1, ps1), (g2, s2, p2, ps2) = image_one(), image_two()
    gt_json, gt_dir = write_panoptic(str(tmp_path), 'gt', [('a', g1, s1), ('b', g2, s2)])
    pred_json, pred_dir = write_panoptic(str(tmp_path), 'pred', [('a', p1, ps1), ('b', p2, ps2)])
    out = str(tmp_path / 'errors.json')
    results = thing_errors.main(
        [gt_json, gt_dir, '--pred', f'm={pred_json}:{pred_dir}', '--out', out])
    r = results['m']
    assert (r['gt_things'], r['tp'], r['fn'], r['fp']) == (5, 2, 3, 4)
    # car: tp 2, fn 2, fp 4 -> 2 / 5; person: tp 0, fn 1 -> 0; RQ_th is their mean
    assert r['RQ_th'] == pytest.approx(100 * (2 / 5 + 0) / 2)
    assert '| m | 5 | 2 | 3 |' in capsys.readouterr().out
    with open(out) as f:
        assert json.load(f) == results


def test_clear_errors(tmp_path):
    g, s, p, ps = image_two()
    gt_json, gt_dir = write_panoptic(str(tmp_path), 'gt', [('a', g, s), ('b', g, s)])
    pred_json, pred_dir = write_panoptic(str(tmp_path), 'pred', [('a', p, ps)])
    with pytest.raises(KeyError, match='no prediction for 1 GT images, e.g. b'):
        thing_errors.count_errors(gt_json, gt_dir, pred_json, pred_dir)
    with pytest.raises(FileNotFoundError, match='missing.json'):
        thing_errors.count_errors(gt_json, gt_dir, str(tmp_path / 'missing.json'), pred_dir)
    with pytest.raises(SystemExit):
        thing_errors.main([gt_json, gt_dir, '--pred', 'no-equals-sign'])
