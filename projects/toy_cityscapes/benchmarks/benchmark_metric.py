# Copyright (c) mmibs contributors. All rights reserved.
"""Time mmibs' panoptic evaluation against hotcoco, cityscapesscripts and panopticapi on the same
synthetic files, and check that the numbers are identical.

It writes N synthetic ground-truth / prediction pairs (street-scene-like, ~50-100 segments, with
merged, split, missed, spurious and mislabelled instances, crowd and void; ground truth written
with PIL as cityscapesscripts' ``createPanopticImgs`` does), then times, like with like:

- PNG decoding alone, with each decoder mmibs can use (imgread, OpenCV; into runs, as the
  evaluation reads them) and with PIL + rgb2id as the official evaluators do;
- one process: mmibs ``accumulate_panoptic_stats(nproc=1)`` vs the ``pq_compute_single_core`` of
  cityscapesscripts and of panopticapi over all images;
- inside a test loop (prediction tensors in memory, one process): mmibs ``PanopticQualityMetric``
  vs mmdet's ``CocoPanopticMetric``, which writes each prediction to a PNG and runs panopticapi's
  code on it (classes are given in json order, so mmdet's label-order bug does not bite here);
  plus the second evaluation of one mmibs metric, whose ground truth is cached by then;
- all cores: ``mmibs.evaluation.evaluate_panoptic`` (threads) vs hotcoco's ``pq_compute`` (a Rust
  PQ tool; installed on demand into ``--hotcoco-dir``, never a requirement of mmibs; it needs int
  image ids, so it reads a copy of the two jsons with ints, the same PNGs), cityscapesscripts'
  ``evaluatePanoptic`` and panopticapi's ``pq_compute`` (``cpu_count()`` processes each). It
  prints the ratio mmibs / hotcoco of this run.

Each timing is the minimum over ``--repeat`` interleaved runs. PQ/SQ/RQ of every evaluator are
checked against mmibs' to 1e-9.

Example::

    python -m projects.toy_cityscapes.benchmarks.benchmark_metric --num-images 10 --height 1024 \\
        --width 2048
"""
import argparse
import contextlib
import copy
import io
import json
import logging
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as cs_eval
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.logging import MMLogger
from panopticapi import evaluation as pa_eval
from PIL import Image

import mmibs  # noqa: F401  (registers PanopticQualityMetric)
from mmibs.evaluation.functional import (PanopticStats, accumulate_panoptic_stats,
                                         evaluate_panoptic, match_annotations,
                                         png_decoder_available, read_panoptic_png,
                                         read_panoptic_runs, summarize_panoptic_stats)
from mmibs.registry import METRICS
from ..synthetic import write_panoptic_pairs

#: Parts of the benchmark, in the order they run.
SECTIONS = ('decode', 'single', 'metric', 'multi')


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
    parser.add_argument(
        '--sections',
        nargs='+',
        choices=SECTIONS,
        default=list(SECTIONS),
        help='what to time (e.g. "--sections multi" for the mmibs / hotcoco ratio alone)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--hotcoco',
        choices=('auto', 'skip'),
        default='auto',
        help='auto: time hotcoco (all cores), importing it or installing it into --hotcoco-dir')
    parser.add_argument(
        '--hotcoco-dir',
        default=osp.join(osp.expanduser('~'), '.cache', 'mmibs', f'hotcoco-{HOTCOCO_VERSION}'),
        help='where hotcoco is installed on demand (pip --target; not the environment)')
    return parser.parse_args(argv)


#: The hotcoco release the comparison was made with.
HOTCOCO_VERSION = '1.3.0'


def import_hotcoco(target: str):
    """hotcoco's ``pq_compute``: imported, else installed into ``target`` (pip --target).

    Returns:
        tuple: (``pq_compute`` or None, a line saying where it came from or why it is missing).
    """
    try:
        import hotcoco
        from hotcoco.panoptic import pq_compute
        return pq_compute, f'hotcoco {getattr(hotcoco, "__version__", "?")} (installed)'
    except ImportError:
        pass
    if not osp.isdir(target):
        os.makedirs(osp.dirname(osp.abspath(target)), exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.hotcoco-', dir=osp.dirname(osp.abspath(target)))
        commands = [[
            sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--target', tmp,
            f'hotcoco=={HOTCOCO_VERSION}'
        ]]
        uv = shutil.which('uv') or osp.join(osp.dirname(sys.executable), 'uv')
        if osp.isfile(uv):
            commands.append([
                uv, 'pip', 'install', '--quiet', '--no-deps', '--python', sys.executable,
                '--target', tmp, f'hotcoco=={HOTCOCO_VERSION}'
            ])
        errors = []
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode == 0:
                os.replace(tmp, target)  # complete installs only
                break
            errors.append(f'{command[0]}: {(done.stderr or done.stdout).strip()[-300:]}')
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            return None, (f'hotcoco: skipped, it could not be installed into {target} '
                          f'({"; ".join(errors)})')
    sys.path.insert(0, target)
    try:
        from hotcoco.panoptic import pq_compute
    except ImportError as error:
        return None, f'hotcoco: skipped, {target} does not import ({error})'
    return pq_compute, f'hotcoco {HOTCOCO_VERSION} (from {target})'


def int_id_jsons(paths: Dict[str, str], root: str) -> Dict[str, str]:
    """Copies of the two jsons with int image ids (hotcoco reads no string ids); same PNGs."""
    with open(paths['gt_json']) as f:
        gt = json.load(f)
    with open(paths['pred_json']) as f:
        pred = json.load(f)
    number = {ann['image_id']: k + 1 for k, ann in enumerate(gt['annotations'])}
    for image in gt.get('images', []):
        image['id'] = number[image['id']]
    for ann in gt['annotations'] + pred['annotations']:
        ann['image_id'] = number[ann['image_id']]
    out = dict(
        paths,
        gt_json=osp.join(root, 'gt_int_ids.json'),
        pred_json=osp.join(root, 'pred_int_ids.json'))
    with open(out['gt_json'], 'w') as f:
        json.dump(gt, f)
    with open(out['pred_json'], 'w') as f:
        json.dump(pred, f)
    return out


def write_files(root: str, args: argparse.Namespace) -> Dict[str, str]:
    """The synthetic pairs (:func:`write_panoptic_pairs`, Cityscapes' categories) under ``root``."""
    paths = write_panoptic_pairs(
        root,
        num_images=args.num_images,
        height=args.height,
        width=args.width,
        seed=args.seed,
        num_things=args.num_things,
        city='frankfurt',
        pred_writer=args.pred_writer)
    num_segments = []
    for path in (paths['gt_json'], paths['pred_json']):
        with open(path) as f:
            num_segments.append(
                np.mean([len(ann['segments_info']) for ann in json.load(f)['annotations']]))
    print(f'{args.num_images} pairs of {args.height}x{args.width}, segments per image: '
          f'{num_segments[0]:.0f} ground truth, {num_segments[1]:.0f} predicted; files in {root}')
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
    print(f'{"evaluator":70s} {"total s":>8s} {"ms/image":>9s} {"speed-up":>9s}')
    for name, seconds in times.items():
        print(f'{name:70s} {seconds:8.3f} {1000 * seconds / num_images:9.1f} '
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

    def evaluate_with(metric):
        for sample in samples:
            # mmdet's metric writes VOID into the prediction tensor in place: give every run
            # its own copy (about 1 ms per image, for both metrics alike)
            pred = dict(sem_seg=sample['pred_panoptic_seg']['sem_seg'].clone())
            metric.process({}, [dict(sample, pred_panoptic_seg=pred)])
        results = metric.compute_metrics(metric.results)
        metric.results.clear()
        return results

    def run(cfg):

        def evaluate():
            metric = METRICS.build(cfg)
            metric.dataset_meta = meta
            return evaluate_with(metric)

        return evaluate

    mmibs_cfg = dict(
        type='PanopticQualityMetric', ann_file=things_first, seg_prefix=paths['gt_folder'])
    # One metric kept across evaluations, as in training: its first evaluation (not timed here)
    # decodes and caches the ground truth, the timed ones find it cached.
    warm = METRICS.build(mmibs_cfg)
    warm.dataset_meta = meta
    runs = {
        'mmdet CocoPanopticMetric':
        run(dict(type='CocoPanopticMetric', ann_file=things_first, seg_prefix=paths['gt_folder'])),
        'mmibs PanopticQualityMetric':
        run(mmibs_cfg),
        'mmibs PanopticQualityMetric, later evaluation (ground truth cached)':
        lambda: evaluate_with(warm),
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' index messages
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # the metrics' result tables
        try:
            evaluate_with(warm)
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


def check_official(name: str, official: dict, ours: dict) -> None:
    """PQ/SQ/RQ (All/Things/Stuff) of an official-format result (fractions) equal mmibs' to 1e-9."""
    for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        for key in ('pq', 'sq', 'rq'):
            found = ours[key.upper() + suffix]
            if abs(100 * official[group][key] - found) > 1e-9:
                raise AssertionError(f'{name}: {group} {key} {100 * official[group][key]} differs '
                                     f'from mmibs {found}')


def time_all_cores(args: argparse.Namespace, paths: Dict[str, str], root: str,
                   n: int) -> Dict[str, float]:
    """evaluate_panoptic (threads) vs hotcoco, cityscapesscripts and panopticapi, all cores."""
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else \
        (os.cpu_count() or 1)
    ours_name = f'mmibs evaluate_panoptic ({nproc} threads)'

    def mmibs_run(**kwargs):
        return lambda: evaluate_panoptic(
            paths['gt_json'],
            paths['gt_folder'],
            paths['pred_json'],
            paths['pred_folder'],
            nproc=nproc,
            show_progress=False,
            **kwargs)

    runs = {ours_name: mmibs_run()}
    if png_decoder_available('imgread'):
        runs[f'mmibs evaluate_panoptic ({nproc} threads, decoder=cv2)'] = mmibs_run(decoder='cv2')
    hotcoco_name = None
    if args.hotcoco == 'auto':
        pq_compute, origin = import_hotcoco(args.hotcoco_dir)
        print(f'\n{origin}')
        if pq_compute is not None:
            hotcoco_name = 'hotcoco pq_compute (PQ only, Rust, all cores)'
            int_paths = int_id_jsons(paths, root)
            runs[hotcoco_name] = lambda: pq_compute(int_paths['gt_json'], int_paths[
                'pred_json'], int_paths['gt_folder'], int_paths['pred_folder'])
    else:
        print('\nhotcoco: skipped (--hotcoco skip)')
    cs_multi = f'cityscapesscripts evaluatePanoptic ({nproc} processes)'
    pa_multi = f'panopticapi pq_compute ({nproc} processes)'
    runs[cs_multi] = lambda: cs_eval.evaluatePanoptic(paths['gt_json'], paths['gt_folder'], paths[
        'pred_json'], paths['pred_folder'], osp.join(root, 'cs_results.json'))
    runs[pa_multi] = lambda: pa_eval.pq_compute(paths['gt_json'], paths['pred_json'], paths[
        'gt_folder'], paths['pred_folder'])
    with contextlib.redirect_stdout(io.StringIO()):
        times, results = best_of(runs, args.repeat)
    ours = results[ours_name]
    for name, values in results.items():
        if name.startswith('mmibs'):
            if any(values[key] != ours[key] for key in ours if key != 'time'):
                raise AssertionError(f'{name} differs from {ours_name}')
        else:
            check_official(name, values, ours)
    print_rows('All cores (PQ/SQ/RQ identical to 1e-9: checked)', times, cs_multi, n)
    if hotcoco_name is not None:
        ratio = times[ours_name] / times[hotcoco_name]
        print(f'\nmmibs / hotcoco = {times[ours_name]:.3f} s / {times[hotcoco_name]:.3f} s = '
              f'{ratio:.2f} (same files, same run; mmibs also computes Acc_th, Prec_th, mIoU)')
        times['mmibs / hotcoco'] = ratio
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
        def decode_all(read):
            return lambda: [(read(osp.join(paths['gt_folder'], g['file_name'])),
                             read(osp.join(paths['pred_folder'], p['file_name'])))
                            for g, p in pairs]

        def official_read(path):
            return cs_eval.rgb2id(np.array(Image.open(path), dtype=np.uint32))

        decode_runs = {}
        if png_decoder_available('imgread'):
            # as the evaluation reads them: straight into runs (read_panoptic_runs)
            decode_runs['decode both PNGs, imgread (mmibs default)'] = decode_all(
                lambda path: read_panoptic_runs(path, decoder='imgread'))
        decode_runs['decode both PNGs, cv2 (mmibs fallback)'] = decode_all(
            lambda path: read_panoptic_runs(path, decoder='cv2'))
        decode_runs['decode both PNGs, PIL + rgb2id (official readers)'] = decode_all(official_read)
        decode_times = best_of(decode_runs, args.repeat)[0] if 'decode' in args.sections else {}

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
        if {'single', 'metric'} & set(args.sections):  # the metric section checks against these
            single_times, single_results = best_of(single_runs, args.repeat)
            ours = single_results['mmibs accumulate_panoptic_stats(nproc=1)']
            check_equal('cityscapesscripts', single_results[cs_name], ours)
            check_equal('panopticapi', single_results['panopticapi pq_compute_single_core'], ours)
            single_times.update(decode_times)
            print_rows('One process (PQ/SQ/RQ identical to 1e-9: checked)', single_times, cs_name,
                       n)
            report['single'] = single_times
        elif decode_times:
            print_rows('PNG decoding, one process', decode_times, next(iter(decode_times)), n)
            report['decode'] = decode_times

        if 'metric' in args.sections:
            metric_times = time_metrics(paths, gt, pairs, args.repeat, single_results[cs_name])
            print_rows('Metrics in a test loop, one process (PQ/SQ/RQ identical: checked)',
                       metric_times, 'mmdet CocoPanopticMetric', n)
            report['metric'] = metric_times

        if args.skip_multi or 'multi' not in args.sections:
            print('\nhotcoco: skipped (it is timed with all cores: --sections multi)')
        else:
            report['multi'] = time_all_cores(args, paths, root, n)
        ours = accumulate_panoptic_stats(
            pairs, paths['gt_folder'], paths['pred_folder'], gt['categories'], show_progress=False)
        results = summarize_panoptic_stats(ours)
        print(', '.join(f'{key} {results[key]:.3f}'
                        for key in ('PQ', 'PQ_th', 'PQ_st', 'Acc_th', 'Prec_th', 'mIoU')))
        return report


if __name__ == '__main__':
    main()
