# Copyright (c) mmibs contributors. All rights reserved.
"""The end-to-end demo (`make demo`): what IBS does, on this machine, in about half an hour on 2
cores (timed in the README).

1. write a synthetic dataset in the raw Cityscapes layout (touching same-class instances, stuff,
   crowd and void; make_synthetic.py of this project): 1,000 training scenes, so that a run sees
   each a few times instead of memorising a handful, and the study's 30 validation scenes,
2. convert it with the real converter (tools/dataset_converters/cityscapes_panoptic.py),
3. train Panoptic FCN from scratch on a small ResNet-18 (this project's configs/), by default
   twice: crop-based without IBS (the paper's baseline) and the released recipe, IBS between the
   two crops of crop-sampled pairs (``--models ... ibs`` adds IBS alone, random partner), each
   for 3,000 iterations (the baseline's PQ_th still rises there: the longest schedule that fits
   the demo's time; README.md of this project), two at a time with one thread each (runs.py),
   so that with the default options the runs are the study's (ibs_study.py) Panoptic FCN seed 0,
4. evaluate each with the full metric set (PQ/SQ/RQ, Acc_th/Prec_th, mIoU; tools/test.py),
5. print a comparison table, and the differences to the baseline next to the study's over its
   seeds (docs/results/ibs_study.json: is a difference beyond the seed spread?), and
6. draw the confusion figures (tools/analysis_tools/visualize_confusion.py).

Every step runs the same command-line tools a user runs, in subprocesses, so the demo exercises
the real path. The outputs are listed at the end; ``OUT/summary.md`` holds the table.
"""
import argparse
import json
import math
import os
import os.path as osp
import time
from concurrent.futures import ThreadPoolExecutor

from .runs import (CONFIG_DIR, RESULTS_DIR, confusion_figures, default_jobs, make_dataset,
                   schedule_options, threads_per_job, train_and_test)

# baseline: plain crops; cropsamp+ibs: the released recipe, IBS between the two crops of
# crop-sampled pairs; ibs (optional): plain crops + the IBS loss (random partner), IBS alone. The
# names are the study's.
DEMO_CONFIGS = {
    name: osp.join(CONFIG_DIR, 'panoptic-fcn_r18-tiny_1xb4-3k_synthetic-cityscapes-' + suffix)
    for name, suffix in (('baseline', 'crop-128x256.py'), ('ibs', 'crop-128x256-ibs.py'),
                         ('cropsamp+ibs', 'cropsamp-128x256-ibs.py'))
}
DEFAULT_MODELS = ('baseline', 'cropsamp+ibs')
# configs whose training set is wrapped by CropSamplingDataset (train_dataloader.dataset.dataset)
CROP_SAMPLING = ('cropsamp+ibs', )
TABLE_KEYS = ('PQ', 'SQ', 'RQ', 'PQ_th', 'PQ_st', 'Acc_th', 'Prec_th', 'mIoU')
# The measured study (ibs_study.py, 3 seeds) that the demo's one-seed differences are read
# against; the demo's runs are its Panoptic FCN seed 0 when the settings match.
STUDY_FILE = osp.join(RESULTS_DIR, 'ibs_study.json')
STUDY_KEYS = ('PQ', 'PQ_th', 'PQ_st', 'Acc_th', 'Prec_th')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='demo_out', help='output folder (default: demo_out)')
    parser.add_argument('--iters', type=int, default=3000,
                        help='training iterations per model (default: 3000, the study\'s)')
    parser.add_argument('--num-train', type=int, default=1000,
                        help='synthetic training images (default: 1000, as the study)')
    parser.add_argument('--num-val', type=int, default=30,
                        help='synthetic validation images (default: 30, as the study)')
    parser.add_argument('--height', type=int, default=256, help='synthetic image height')
    parser.add_argument('--width', type=int, default=512, help='synthetic image width')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jobs', type=int, default=default_jobs(),
                        help='models trained at the same time, each with OMP_NUM_THREADS = CPU '
                        'cores / jobs unless OMP_NUM_THREADS is set (default: 2 on 2 or more '
                        'cores, as the study, so the runs are the study\'s)')
    parser.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS),
                        choices=list(DEMO_CONFIGS),
                        help='which models to train (default: baseline cropsamp+ibs; add ibs for '
                        'IBS alone with a random partner)')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    return args


def banner(step: str) -> None:
    print(f'\n{"=" * 100}\n[demo] {step}\n{"=" * 100}', flush=True)


def format_table(results: dict, train_time: dict) -> str:
    header = '| model | ' + ' | '.join(TABLE_KEYS) + ' | train time |'
    rule = '|---' * (len(TABLE_KEYS) + 2) + '|'
    rows = [header, rule]
    for name, metrics in results.items():
        cells = [f'{metrics.get(k, float("nan")):.1f}' for k in TABLE_KEYS]
        rows.append(f'| {name} | ' + ' | '.join(cells) + f' | {train_time[name] / 60:.1f} min |')
    return '\n'.join(rows)


def study_settings_match(study: dict, args) -> bool:
    """Whether this demo's runs are the study's Panoptic FCN runs of seed 0 (same data and
    schedule)."""
    return (study.get('iters', {}).get('panoptic_fcn') == args.iters
            and study.get('num_train') == args.num_train and study.get('num_val') == args.num_val
            and study.get('size') == [args.height, args.width]
            and study.get('data_seed', 0) == args.seed and 0 in study.get('seeds', [])
            and not study.get('cropsamp_scales') and study.get('ibs_weight') is None)


def format_study_comparison(results: dict, study: dict, args) -> str:
    """This run's differences to its baseline next to the study's over several seeds.

    Each cell: this run's difference, then the study's mean paired difference ± the half-width of
    its 95% t-interval; '*' marks a study interval that excludes 0 (an effect beyond the seed
    spread), '~' one that includes it.
    """
    summary = study['summary']['panoptic_fcn']
    seeds = study['seeds']
    match = study_settings_match(study, args)
    lines = [
        f'Differences to the baseline, this run vs the study ({len(seeds)} seeds {seeds}, '
        f'docs/results/): this run ; study mean ± 95% '
        'interval; * beyond the seed spread, ~ within it.',
        ('This demo used the study\'s data, configs, iterations and seed 0 (its runs are the '
         'study\'s when each uses one thread, as with the default --jobs 2 on 2 cores).' if match
         else 'This demo used other settings than the study (iterations, images or size), so the '
         'study\'s numbers are a guide only.'), '',
        '| model | ' + ' | '.join(f'Δ{k}' for k in STUDY_KEYS) + ' |',
        '|---' * (len(STUDY_KEYS) + 1) + '|'
    ]
    for name, metrics in results.items():
        if name == 'baseline' or 'baseline' not in results:
            continue
        entry = summary.get(name)
        cells = []
        for key in STUDY_KEYS:
            here = metrics[key] - results['baseline'][key]
            if entry is None:
                cells.append(f'{here:+.1f} ; -')
                continue
            diff, ci = entry[key]['diff'], entry[key]['ci95']
            if math.isnan(ci):  # a study of one seed has no interval
                cells.append(f'{here:+.1f} ; {diff:+.1f} (1 seed)')
                continue
            mark = '*' if abs(diff) > ci else '~'
            cells.append(f'{here:+.1f} ; {diff:+.1f} ± {ci:.1f} {mark}')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def load_study(path: str = STUDY_FILE):
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def main():
    args = parse_args()
    out = osp.abspath(args.out)
    data_root = osp.join(out, 'data', 'cityscapes') + '/'
    os.makedirs(out, exist_ok=True)
    t_start = time.time()

    banner(f'1/6 synthetic Cityscapes-layout data ({args.num_train} train + {args.num_val} val '
           f'images, {args.height}x{args.width}) -> {data_root}; 2/6 conversion with the '
           'Cityscapes panoptic converter (cityscapesscripts + fixes)')
    make_dataset(data_root, args.num_train, args.num_val, args.height, args.width, args.seed)

    results, train_time, checkpoints = {}, {}, {}
    threads = threads_per_job(args.jobs)

    def train_one(name):
        results[name], checkpoints[name], train_time[name] = train_and_test(
            DEMO_CONFIGS[name],
            args.iters,
            data_root,
            nested_train=name in CROP_SAMPLING,
            train_dir=osp.join(out, 'work_dirs', name),
            test_dir=osp.join(out, 'test', name),
            train_options=schedule_options(args.iters),
            logs=(osp.join(out, f'train_{name}.log'), osp.join(out, f'test_{name}.log')),
            threads=threads,
            prefix=f'[{name}] ' if args.jobs > 1 else '')

    banner(f'3-4/6 training ({args.iters} iterations) and evaluating {", ".join(args.models)}, '
           f'{args.jobs} at a time' + (f' with OMP_NUM_THREADS={threads} each' if threads else '')
           + ': ' + ', '.join(DEMO_CONFIGS[n] for n in args.models))
    # the runs are independent processes; the threads here only wait for them
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(train_one, name) for name in args.models]:
            future.result()
    results = {n: results[n] for n in DEMO_CONFIGS if n in results}  # the table in a fixed order
    checkpoints = {n: checkpoints[n] for n in results}

    banner('5/6 comparison (synthetic validation set, percent)')
    table = format_table(results, train_time)
    study = load_study()
    if study is not None and 'baseline' in results and len(results) > 1:
        table += '\n\n' + format_study_comparison(results, study, args)
    print(table, flush=True)

    banner('6/6 confusion figures')
    fig_dir = osp.join(out, 'figures')
    names = list(checkpoints)
    confusion_figures([checkpoints[n] for n in names], [DEMO_CONFIGS[n] for n in names], names,
                      data_root, fig_dir, max_images=3)

    summary = osp.join(out, 'summary.md')
    with open(summary, 'w') as f:
        f.write('# mmibs demo: Panoptic FCN with and without IBS on synthetic Cityscapes\n\n')
        f.write(f'{args.iters} iterations per model, {args.num_train} training and '
                f'{args.num_val} validation images of {args.height}x{args.width}, seed '
                f'{args.seed}. One seed: read its differences against the study\'s spread '
                '(below); Prec_th falls when a prediction spreads over several same-class '
                'instances, Acc_th when an instance is split or missed.\n\n')
        f.write(table + '\n')
    banner(f'done in {(time.time() - t_start) / 60:.1f} min')
    print(table)
    print(f'\n[demo] summary:       {summary}')
    print(f'[demo] figures:       {fig_dir}/instances (GT instance vs each model\'s best covering '
          f'segment), {fig_dir}/panoptic (full predictions)')
    print(f'[demo] checkpoints:   {", ".join(checkpoints.values())}')
    print(f'[demo] logs:          {out}/train_*.log, {out}/test_*.log')


if __name__ == '__main__':
    main()
