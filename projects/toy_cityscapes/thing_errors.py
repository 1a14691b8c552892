# Copyright (c) mmibs contributors. All rights reserved.
"""Where the things of a panoptic prediction go wrong: the errors behind RQ_th, by kind.

PQ_th = SQ_th x RQ_th, and RQ counts segments: a ground-truth (GT) thing is a true positive when a
predicted segment of its class overlaps it with IoU > 0.5, every other GT thing is a false
negative (FN) and every other predicted thing a false positive (FP). When a model loses RQ_th,
this tool says how, segment by segment, from the panoptic PNGs of the GT and of a prediction
(COCO / Cityscapes panoptic format, as the converter and
``PanopticQualityMetric(outfile_prefix=)`` write them). The pair overlaps come from mmibs'
``segment_overlaps``; the matching follows panopticapi's ``pq_compute`` and is written out here
because the kinds need which segment matched which, which no evaluator returns (the tests check
the counts against mmibs' metric). Each FN is put in one kind by the thing segment that covers
most of it:

- ``merged``: that segment is matched to *another* GT instance: the instance was absorbed by a
  neighbour (the confusion of touching instances that IBS is about);
- ``unmatched``: that segment matches no GT instance (e.g. it spans several instances, or is too
  small or too large);
- ``missed``: no predicted thing covers it (stuff, void, or nothing).

and each FP by the GT thing it overlaps most:

- ``fragment``: that GT instance is matched by another segment (a piece of an instance found);
- ``on_unmatched``: that GT instance is not matched (its FN pair: a wrong shape or class);
- ``spurious``: it overlaps no GT thing (on stuff or void).

Across the kinds, ``fp_spanning`` counts the FPs that cover more than half of each of at least two
GT instances of their class: one segment for several touching instances, none of them matched (the
other face of the confusion; each leaves two or more ``unmatched`` FNs).

Counts are summed over images and thing classes; ``RQ_th`` is recomputed from them (mean over the
thing classes present, as PQ) so it can be checked against the metric's. Usage::

    python -m projects.toy_cityscapes.thing_errors GT_JSON GT_DIR \
        --pred baseline=PRED_JSON:PRED_DIR --pred cropsamp+ibs=PRED_JSON:PRED_DIR [--out F.json]

The numbers for the study's models: docs/results/thing_errors_1000_scenes.md.
"""
import argparse
import json
import os
import os.path as osp
import sys
from collections import Counter
from typing import Dict, Tuple

import numpy as np

from mmibs.evaluation.functional import read_panoptic_png, segment_overlaps

FN_KINDS = ('merged', 'unmatched', 'missed')
FP_KINDS = ('fragment', 'on_unmatched', 'spurious')
COUNTS = ('tp', 'fn', 'fp', *FN_KINDS, *FP_KINDS, 'fp_spanning')


def image_errors(gt_ids: np.ndarray, gt_segs: Dict[int, dict], pred_ids: np.ndarray,
                 pred_segs: Dict[int, dict], things: set) -> Dict[str, Counter]:
    """The thing errors of one image.

    Args:
        gt_ids, pred_ids (np.ndarray): segment ids, shape (H, W); GT id 0 is void.
        gt_segs, pred_segs (dict): segment id -> ``segments_info`` entry (``category_id``,
            ``iscrowd``, optional ``area``).
        things (set): the thing category ids.

    Returns:
        dict: Counters keyed by category id: ``tp``, ``fn``, ``fp``, one per error kind and
        ``fp_spanning`` (``COUNTS``).
    """
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f'thing_errors: GT {gt_ids.shape} and prediction {pred_ids.shape} differ')
    gt_list, pred_list = list(gt_segs), list(pred_segs)
    # pixel counts of every pair, shape (G + 2, P + 2): row / column 0 void, 1.. the segments
    inter = segment_overlaps(gt_ids, np.array(gt_list, np.int64), pred_ids,
                             np.array(pred_list, np.int64))
    pred_area = inter.sum(0)  # shape (P + 2, )
    cat = {('gt', i): gt_segs[g]['category_id'] for i, g in enumerate(gt_list, 1)}
    cat.update({('pred', j): pred_segs[p]['category_id'] for j, p in enumerate(pred_list, 1)})
    gt_things = [i for i, g in enumerate(gt_list, 1)
                 if cat['gt', i] in things and not gt_segs[g]['iscrowd']]
    pred_things = [j for j in range(1, len(pred_list) + 1) if cat['pred', j] in things]
    # the GT area is the json's when given, as panopticapi reads it
    gt_area = {i: gt_segs[gt_list[i - 1]].get('area', inter[i].sum()) for i in gt_things}

    matched_gt, matched_pred = {}, {}
    for i in gt_things:
        for j in pred_things:
            n = inter[i, j]
            if n == 0 or cat['gt', i] != cat['pred', j]:
                continue
            union = gt_area[i] + pred_area[j] - n - inter[0, j]  # void leaves the union
            if n / union > 0.5:
                matched_gt[i], matched_pred[j] = j, i

    out = {k: Counter() for k in COUNTS}
    for i in gt_things:
        c = cat['gt', i]
        if i in matched_gt:
            out['tp'][c] += 1
            continue
        out['fn'][c] += 1
        covering = [(inter[i, j], j) for j in pred_things if inter[i, j] > 0]
        if not covering:
            out['missed'][c] += 1
        else:
            _, j = max(covering)
            out['merged' if j in matched_pred else 'unmatched'][c] += 1

    crowd_of = {cat['gt', i]: i for i, g in enumerate(gt_list, 1) if gt_segs[g]['iscrowd']}
    for j in pred_things:
        if j in matched_pred:
            continue
        c = cat['pred', j]
        # panopticapi: a prediction mostly on void or on its class's crowd region is no FP
        ignored = inter[0, j] + (inter[crowd_of[c], j] if c in crowd_of else 0)
        if ignored / pred_area[j] > 0.5:
            continue
        out['fp'][c] += 1
        overlaps = [(inter[i, j], i) for i in gt_things if inter[i, j] > 0]
        if not overlaps:
            out['spurious'][c] += 1
        else:
            _, i = max(overlaps)
            out['fragment' if i in matched_gt else 'on_unmatched'][c] += 1
        halves = [i for n, i in overlaps if cat['gt', i] == c and n > 0.5 * inter[i].sum()]
        if len(halves) >= 2:
            out['fp_spanning'][c] += 1
    return out


def read_png(path: str) -> np.ndarray:
    """Segment ids of a panoptic PNG (mmibs' decoder), with the file named when it is missing."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'thing_errors: panoptic PNG not found: {path}')
    return read_panoptic_png(path)


def load_segments(json_path: str) -> Tuple[Dict[str, dict], list]:
    """Annotations by image id, and the categories, of a COCO-panoptic json."""
    if not osp.isfile(json_path):
        raise FileNotFoundError(f'thing_errors: json not found: {json_path}')
    with open(json_path) as f:
        data = json.load(f)
    if 'annotations' not in data:
        raise KeyError(f'thing_errors: {json_path} has no "annotations"')
    return {a['image_id']: a for a in data['annotations']}, data.get('categories')


def count_errors(gt_json: str, gt_dir: str, pred_json: str, pred_dir: str) -> dict:
    """Thing errors of one prediction over all GT images, summed over classes, with RQ_th."""
    gt, categories = load_segments(gt_json)
    if not categories:
        raise KeyError(f'thing_errors: {gt_json} has no "categories"')
    things = {c['id'] for c in categories if c['isthing']}
    pred, _ = load_segments(pred_json)
    missing = sorted(set(gt) - set(pred))
    if missing:
        raise KeyError(f'thing_errors: {pred_json} has no prediction for {len(missing)} GT images, '
                       f'e.g. {missing[0]}')
    total = {k: Counter() for k in COUNTS}
    for image_id, ann in gt.items():
        gt_ids = read_png(osp.join(gt_dir, ann['file_name']))
        pred_ids = read_png(osp.join(pred_dir, pred[image_id]['file_name']))
        gt_segs = {s['id']: s for s in ann['segments_info']}
        pred_segs = {s['id']: s for s in pred[image_id]['segments_info']}
        for k, c in image_errors(gt_ids, gt_segs, pred_ids, pred_segs, things).items():
            total[k].update(c)
    present = [c for c in things if total['tp'][c] + total['fn'][c] + total['fp'][c] > 0]
    rq = [total['tp'][c] / (total['tp'][c] + 0.5 * total['fn'][c] + 0.5 * total['fp'][c])
          for c in present]
    result = {k: sum(c.values()) for k, c in total.items()}
    result['gt_things'] = result['tp'] + result['fn']
    result['RQ_th'] = 100 * float(np.mean(rq)) if rq else 0.0
    return result


def format_table(results: Dict[str, dict]) -> str:
    keys = ('gt_things', 'tp', 'fn', *FN_KINDS, 'fp', *FP_KINDS, 'fp_spanning', 'RQ_th')
    lines = ['| model | ' + ' | '.join(keys) + ' |', '|---' * (len(keys) + 1) + '|']
    for name, r in results.items():
        cells = [f'{r[k]:.1f}' if k == 'RQ_th' else str(r[k]) for k in keys]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_pred(text: str) -> Tuple[str, str, str]:
    name, sep, rest = text.partition('=')
    json_path, sep2, png_dir = rest.partition(':')
    if not (sep and sep2 and name and json_path and png_dir):
        raise argparse.ArgumentTypeError(f'--pred wants NAME=JSON:PNG_DIR, got {text!r}')
    return name, json_path, png_dir


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('gt_json', help='COCO-panoptic GT json (the converter\'s)')
    parser.add_argument('gt_dir', help='folder of the GT panoptic PNGs')
    parser.add_argument('--pred', type=parse_pred, action='append', required=True,
                        help='NAME=JSON:PNG_DIR of one prediction (repeat for several models)')
    parser.add_argument('--out', help='also write the counts as json here')
    args = parser.parse_args(argv)
    results = {name: count_errors(args.gt_json, args.gt_dir, j, d) for name, j, d in args.pred}
    sys.stdout.write(format_table(results) + '\n')
    if args.out:  # written whole or not at all
        tmp = args.out + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, args.out)
    return results


if __name__ == '__main__':
    main()
