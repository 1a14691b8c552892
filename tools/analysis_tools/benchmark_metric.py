# Copyright (c) mmibs contributors. All rights reserved.
"""Time mmibs' panoptic evaluation against cityscapesscripts, panopticapi (and hotcoco) on the same
synthetic files, and check that the numbers are identical.

It writes N synthetic ground-truth / prediction pairs (street-scene-like, ~50-100 segments, with
merged, split, missed, spurious and mislabelled instances, crowd and void; ground truth written
with PIL as cityscapesscripts' ``createPanopticImgs`` does), then times, like with like:

- one process: mmibs ``accumulate_panoptic_stats(nproc=1)`` vs the ``pq_compute_single_core`` of
  cityscapesscripts and of panopticapi over all images;
- all cores: ``mmibs.evaluation.evaluate_panoptic`` vs cityscapesscripts' ``evaluatePanoptic`` and
  panopticapi's ``pq_compute`` (both use ``cpu_count()`` processes);
- inside a test loop (prediction tensors in memory, one process): mmibs ``PanopticQualityMetric``
  vs mmdet's ``CocoPanopticMetric``, which writes each prediction to a PNG and runs panopticapi's
  code on it (classes are given in json order, so mmdet's label-order bug does not bite here).

Each timing is the minimum over ``--repeat`` interleaved runs. PNG decoding is timed on its own to
show the floor that every evaluator pays.

Example::

    python tools/analysis_tools/benchmark_metric.py --num-images 10 --height 1024 --width 2048
"""
import argparse
import contextlib
import copy
import io
import json
import logging
import os
import os.path as osp
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as cs_eval
from mmengine.logging import MMLogger
from panopticapi import evaluation as pa_eval
from PIL import Image

import mmibs  # noqa: F401  (registers PanopticQualityMetric)
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmibs.evaluation.functional import (PanopticStats, accumulate_panoptic_stats,
                                         evaluate_panoptic, id2rgb, match_annotations,
                                         read_panoptic_png, summarize_panoptic_stats)
from mmibs.registry import METRICS
from mmibs.testing import CITYSCAPES_CATEGORIES, make_panoptic_pair


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark panoptic evaluators on the same files')
    parser.add_argument('--num-images', type=int, default=10)
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument(
        '--num-things',
        type=int,
        default=60,
        help='ground-truth thing instances per image (plus ~15 stuff segments)')
    parser.add_argument(
        '--pred-writer',
        choices=('pil', 'cv2'),
        default='pil',
        help='PNG writer of the predictions (mmibs writes with cv2)')
    parser.add_argument('--repeat', type=int, default=3, help='interleaved runs per timing')
    parser.add_argument('--work-dir', help='where to write the files (default: a temp dir)')
    parser.add_argument('--skip-multi', action='store_true', help='skip the all-core timings')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def write_files(root: str, args: argparse.Namespace) -> Dict[str, str]:
    rng = np.random.default_rng(args.seed)
    paths = dict(
        gt_json=osp.join(root, 'gt.json'),
        gt_folder=osp.join(root, 'gt'),
        pred_json=osp.join(root, 'pred.json'),
        pred_folder=osp.join(root, 'pred'))
    os.makedirs(paths['gt_folder'], exist_ok=True)
    os.makedirs(paths['pred_folder'], exist_ok=True)
    gt_anns, pred_anns, num_segments, images = [], [], [], []
    for k in range(args.num_images):
        image_id = f'frankfurt_{k:06d}_000019'
        gt, gt_segments, pred, pred_segments = make_panoptic_pair(
            args.height, args.width, rng, num_things=args.num_things)
        gt_file, pred_file = f'{image_id}_gtFine_panoptic.png', f'{image_id}.png'
        Image.fromarray(id2rgb(gt)).save(osp.join(paths['gt_folder'], gt_file))
        if args.pred_writer == 'pil':
            Image.fromarray(id2rgb(pred)).save(osp.join(paths['pred_folder'], pred_file))
        else:
            cv2.imwrite(osp.join(paths['pred_folder'], pred_file), id2rgb(pred)[..., ::-1])
        gt_anns.append(dict(image_id=image_id, file_name=gt_file, segments_info=gt_segments))
        images.append(dict(id=image_id, file_name=gt_file, height=args.height, width=args.width))
        pred_anns.append(dict(image_id=image_id, file_name=pred_file, segments_info=pred_segments))
        num_segments.append((len(gt_segments), len(pred_segments)))
    with open(paths['gt_json'], 'w') as f:
        json.dump(dict(images=images, annotations=gt_anns, categories=CITYSCAPES_CATEGORIES), f)
    with open(paths['pred_json'], 'w') as f:
        json.dump(dict(annotations=pred_anns), f)
    gt_mean, pred_mean = np.mean(num_segments, axis=0)
    print(f'{args.num_images} pairs of {args.height}x{args.width}, segments per image: '
          f'{gt_mean:.0f} ground truth, {pred_mean:.0f} predicted; files in {root}')
    return paths


def official_single(module, pairs, paths, categories):
    pairs = [(copy.deepcopy(g), copy.deepcopy(p)) for g, p in pairs]  # they write 'area' into them
    with contextlib.redirect_stdout(io.StringIO()):
        return module.pq_compute_single_core(0, pairs, paths['gt_folder'], paths['pred_folder'],
                                             categories)


def best_of(runs: Dict[str, Callable], repeat: int) -> Tuple[Dict[str, float], Dict[str, Any]]:
    """Minimum wall time of each callable over ``repeat`` interleaved rounds; keeps the results."""
    times = {name: [] for name in runs}
    results = {}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}, results


def check_equal(name: str, official, stats: PanopticStats) -> None:
    for k, cat_id in enumerate(stats.cat_ids):
        ref = official.pq_per_cat[int(cat_id)]
        same = (ref.tp, ref.fp, ref.fn) == (stats.tp[k], stats.fp[k], stats.fn[k])
        if not same or abs(ref.iou - stats.iou[k]) > 1e-9:
            raise AssertionError(f'{name} differs from mmibs on category {int(cat_id)}')


def print_rows(title: str, times: Dict[str, float], reference: str, num_images: int) -> None:
    print(f'\n{title}')
    print(f'{"evaluator":58s} {"total s":>8s} {"ms/image":>9s} {"speed-up":>9s}')
    for name, seconds in times.items():
        print(f'{name:58s} {seconds:8.2f} {1000 * seconds / num_images:9.1f} '
              f'{times[reference] / seconds:8.2f}x')


def mmdet_samples(paths: Dict[str, str], pairs: List[tuple], categories: List[dict]) -> list:
    """Prediction tensors as a model returns them, labels in json category order."""
    label_of = {cat['id']: k for k, cat in enumerate(categories)}
    samples = []
    for gt_ann, pred_ann in pairs:
        ids = read_panoptic_png(osp.join(paths['pred_folder'], pred_ann['file_name']))
        pan = np.full(ids.shape, len(categories), dtype=np.int64)
        for inst, seg in enumerate(pred_ann['segments_info'], start=1):
            label = label_of[seg['category_id']]
            pan[ids == seg['id']] = label + categories[label]['isthing'] * inst * INSTANCE_OFFSET
        samples.append(
            dict(
                img_id=gt_ann['image_id'],
                img_path=gt_ann['file_name'],
                ori_shape=ids.shape,
                pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None])))
    return samples


def time_metrics(paths: Dict[str, str], gt: dict, pairs: List[tuple], repeat: int,
                 official) -> Dict[str, float]:
    """process() + compute_metrics() of both metrics over the whole set, one sample per batch.

    mmdet's metric needs a things-first json: it maps labels to categories in json order
    (``get_cat_ids``), and it turns label 0 with instance 0 (a stuff class first in the json) into
    segment id 0, i.e. VOID. So both metrics get a copy of the json with things first.
    """
    categories = sorted(gt['categories'], key=lambda cat: not cat['isthing'])
    things_first = osp.join(osp.dirname(paths['gt_json']), 'gt_things_first.json')
    with open(things_first, 'w') as f:
        json.dump(dict(gt, categories=categories), f)
    meta = dict(
        classes=tuple(c['name'] for c in categories),
        thing_classes=tuple(c['name'] for c in categories if c['isthing']),
        stuff_classes=tuple(c['name'] for c in categories if not c['isthing']))
    samples = mmdet_samples(paths, pairs, categories)
    def run(cfg):

        def evaluate():
            metric = METRICS.build(cfg)
            metric.dataset_meta = meta
            for sample in samples:
                # mmdet's metric writes VOID into the prediction tensor in place: give every run
                # its own copy (about 1 ms per image, for both metrics alike)
                pred = dict(sem_seg=sample['pred_panoptic_seg']['sem_seg'].clone())
                metric.process({}, [dict(sample, pred_panoptic_seg=pred)])
            return metric.compute_metrics(metric.results)

        return evaluate

    runs = {
        'mmdet CocoPanopticMetric':
        run(dict(type='CocoPanopticMetric', ann_file=things_first, seg_prefix=paths['gt_folder'])),
        'mmibs PanopticQualityMetric':
        run(
            dict(
                type='PanopticQualityMetric', ann_file=things_first,
                seg_prefix=paths['gt_folder'])),
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' index messages
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # the metrics' result tables
        try:
            times, results = best_of(runs, repeat)
        finally:
            logger.setLevel(level)
    reference = cs_eval.average_pq(official, {c['id']: c for c in categories})
    for name, values in results.items():
        for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
            for key in ('pq', 'sq', 'rq'):
                found = values[f'{key.upper()}{suffix}']
                if abs(100 * reference[group][key] - found) > 1e-9:
                    raise AssertionError(f'{name}: {group} {key} {found} differs from '
                                         f'cityscapesscripts {100 * reference[group][key]}')
    return times


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    cv2.setNumThreads(1)  # one core per process for every evaluator
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work_dir or tmp
        paths = write_files(root, args)
        with open(paths['gt_json']) as f:
            gt = json.load(f)
        with open(paths['pred_json']) as f:
            pairs = match_annotations(gt, json.load(f))
        categories = {cat['id']: cat for cat in gt['categories']}
        n = len(pairs)
        report = {}

        # PNG decoding alone: the floor of any evaluator reading the files.
        decode_runs = {
            'decode both PNGs, cv2 (mmibs read_panoptic_png)':
            lambda: [(read_panoptic_png(osp.join(paths['gt_folder'], g['file_name'])),
                      read_panoptic_png(osp.join(paths['pred_folder'], p['file_name'])))
                     for g, p in pairs],
            'decode both PNGs, PIL + rgb2id (official readers)':
            lambda: [(cs_eval.rgb2id(
                np.array(Image.open(osp.join(paths['gt_folder'], g['file_name'])), dtype=np.uint32)
            ),
                      cs_eval.rgb2id(
                          np.array(
                              Image.open(osp.join(paths['pred_folder'], p['file_name'])),
                              dtype=np.uint32))) for g, p in pairs],
        }
        decode_times, _ = best_of(decode_runs, args.repeat)

        cs_name = 'cityscapesscripts pq_compute_single_core'
        single_runs = {
            cs_name:
            lambda: official_single(cs_eval, pairs, paths, categories),
            'panopticapi pq_compute_single_core':
            lambda: official_single(pa_eval, pairs, paths, categories),
            'mmibs accumulate_panoptic_stats(nproc=1)':
            lambda: accumulate_panoptic_stats(
                pairs,
                paths['gt_folder'],
                paths['pred_folder'],
                gt['categories'],
                nproc=1,
                show_progress=False),
        }
        single_times, single_results = best_of(single_runs, args.repeat)
        ours = single_results['mmibs accumulate_panoptic_stats(nproc=1)']
        check_equal('cityscapesscripts', single_results[cs_name], ours)
        check_equal('panopticapi', single_results['panopticapi pq_compute_single_core'], ours)

        single_times.update(decode_times)
        print_rows('One process (PQ/SQ/RQ identical to 1e-9: checked)', single_times, cs_name, n)
        report['single'] = single_times

        metric_times = time_metrics(paths, gt, pairs, args.repeat, single_results[cs_name])
        print_rows('Metrics in a test loop, one process (PQ/SQ/RQ identical: checked)',
                   metric_times, 'mmdet CocoPanopticMetric', n)
        report['metric'] = metric_times

        if not args.skip_multi:
            nproc = os.cpu_count() or 1
            cs_multi = f'cityscapesscripts evaluatePanoptic ({nproc} processes)'
            multi_runs = {
                cs_multi:
                lambda: cs_eval.evaluatePanoptic(paths['gt_json'], paths['gt_folder'], paths[
                    'pred_json'], paths['pred_folder'], osp.join(root, 'cs_results.json')),
                f'panopticapi pq_compute ({nproc} processes)':
                lambda: pa_eval.pq_compute(paths['gt_json'], paths['pred_json'], paths['gt_folder'],
                                           paths['pred_folder']),
                f'mmibs evaluate_panoptic ({nproc} processes)':
                lambda: evaluate_panoptic(
                    paths['gt_json'],
                    paths['gt_folder'],
                    paths['pred_json'],
                    paths['pred_folder'],
                    nproc=nproc,
                    show_progress=False),
            }
            with contextlib.redirect_stdout(io.StringIO()):
                multi_times, multi_results = best_of(multi_runs, args.repeat)
            ours_multi = multi_results[f'mmibs evaluate_panoptic ({nproc} processes)']
            for name in (cs_multi, f'panopticapi pq_compute ({nproc} processes)'):
                official = multi_results[name]
                for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
                    for key in ('pq', 'sq', 'rq'):
                        found = ours_multi[key.upper() + suffix]
                        if abs(100 * official[group][key] - found) > 1e-9:
                            raise AssertionError(f'{name}: {group} {key} differs from mmibs')
            print_rows('All cores (PQ/SQ/RQ identical to 1e-9: checked)', multi_times, cs_multi, n)
            report['multi'] = multi_times

        try:
            import hotcoco  # noqa: F401
            print('\nhotcoco is installed, but this benchmark does not call it (its panoptic API '
                  'could not be checked when this tool was written)')
        except ImportError:
            print('\nhotcoco: not installed, skipped')
        results = summarize_panoptic_stats(ours)
        print(', '.join(f'{key} {results[key]:.3f}'
                        for key in ('PQ', 'PQ_th', 'PQ_st', 'Acc_th', 'Prec_th', 'mIoU')))
        return report


if __name__ == '__main__':
    main()
