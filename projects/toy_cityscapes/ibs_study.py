# Copyright (c) mmibs contributors. All rights reserved.
"""Evidence that IBS works, with its spread: both networks x four models x several seeds.

On the synthetic Cityscapes-layout data (large same-class instances that touch, stuff, crowd and
void; make_synthetic.py + the real converter, as demo.py does), train and evaluate, through
tools/train.py and tools/test.py in subprocesses (runs.py),

- networks: the tiny Panoptic FCN and the tiny Mask2Former of this project's configs/ (default),
  with ``--nets maskformer`` the tiny MaskFormer (panoptic, IBS beyond the paper), and, with
  ``--nets solov2 condinst``, the tiny SOLOv2 and CondInst for instance segmentation
  (IBS beyond the paper), evaluated with the official Cityscapes instance AP (``mAP``, ``AP@50``;
  their table, plot ``study_instance.png`` and curves use those, and they get no confusion
  figures);
- models: ``baseline`` (plain crops), ``ibs`` (plain crops + IBS with a random partner),
  ``cropsamp`` (crop-sampled pairs, no IBS), ``cropsamp+ibs`` (the released recipe);
- seeds: ``randomness.seed`` (initialisation and data order); the data are the same for all runs.

It writes ``OUT/study.md`` and ``OUT/study.json`` (mean ± standard deviation over seeds of PQ,
PQ_th, PQ_st, Acc_th, Prec_th, and the paired difference to the baseline of the same network and
seed with a 95% t-interval over seeds), ``OUT/study.png`` (the same, plotted) and the per-instance
confusion figures of the first seed (``OUT/figures/NET``,
tools/analysis_tools/visualize_confusion.py).

Resumable: a run whose ``metrics.json`` exists (for the same iteration count) is not retrained, so
starting the same command again continues where it stopped.

Sizing (defaults: 3 seeds, 30 validation images, 1,000 training images of 256x512, 2 runs at a
time with one thread each). Measured on 2 idle cores with two one-thread runs side by side (batch 4
of 128x256 crops): Panoptic FCN 0.21 s per iteration of each run on one machine (2026-12-04), so a
run of 3,000 iterations takes about 12 minutes with six validations and its test, and the 8 Panoptic
FCN runs of ``--middle-seeds 0`` about 50 minutes; 0.55-0.6 s on another (2026-12-07, a virtual
machine whose host took a third of the CPU time: ``st`` in ``top``), where the same runs take three
times as long. Anything else on the machine slows this down in proportion. The tiny Mask2Former:
0.45 s per iteration (first machine), 0.83 s (second machine: a pair of its 2,000-iteration runs
with eight validations in 31-32 minutes). The tool prints its own estimate at start (from the
per-iteration times below); the logs' ``time:`` gives the real one.

Usage::

    python -m projects.toy_cityscapes.ibs_study --out study_out       # the whole study
    python -m projects.toy_cityscapes.ibs_study --nets mask2former --seeds 0 1 --iters 100
    python -m projects.toy_cityscapes.ibs_study --nets maskformer solov2 condinst \
        --models baseline cropsamp+ibs --iters solov2=1500 condinst=1500
    # crop sampling at target scales that the synthetic things reach without the side_min clamp
    # (crop_sampling_scales.py; README.md of this project)
    python -m projects.toy_cityscapes.ibs_study --out study_scales --models baseline cropsamp \
        cropsamp+ibs --cropsamp-scales 32 45 64 90 128
"""
import argparse
import json
import math
import os
import os.path as osp
import time
from dataclasses import dataclass
from typing import Dict

import numpy as np

from .runs import (CONFIG_DIR, confusion_figures, default_jobs, make_dataset, read_val_curve,
                   run_side_by_side, schedule_options, threads_per_job, train_and_test)

MODELS = ('baseline', 'ibs', 'cropsamp', 'cropsamp+ibs')
SUFFIX = {
    'baseline': 'crop-128x256.py',
    'ibs': 'crop-128x256-ibs.py',
    'cropsamp': 'cropsamp-128x256.py',
    'cropsamp+ibs': 'cropsamp-128x256-ibs.py'
}


@dataclass(frozen=True)
class Net:
    """What the study needs to know of one tiny network of this project's configs/.

    Args:
        prefix (str): the config names up to the model suffix (``SUFFIX``).
        iters (int): the default schedule (the configs' ``max_iters``).
        poly_key (str): the scheduler entry whose ``end`` is the number of iterations + 1.
        sec_per_iter (float): seconds per iteration of batch 4 at 128x256 of one of two
            one-thread runs sharing 2 cores (the estimate printed at start divides the sum by
            ``--jobs``; measured, see the module docstring).
        ibs_head (str): the model attribute whose ``loss_ibs`` holds the IBS loss
            (``--ibs-weight``, ``--ibs-partner``).
        task (str): ``'panoptic'`` (mmibs' PanopticQualityMetric) or ``'instance'`` (the
            official Cityscapes instance AP, mmdet's CityScapesMetric on the raw gtFine).
    """
    prefix: str
    iters: int
    poly_key: str
    sec_per_iter: float
    ibs_head: str = 'panoptic_head'
    task: str = 'panoptic'

    @property
    def configs(self) -> Dict[str, str]:
        """The config of each model (``MODELS``)."""
        return {m: osp.join(CONFIG_DIR, self.prefix + s) for m, s in SUFFIX.items()}


NETS = {
    'panoptic_fcn': Net('panoptic-fcn_r18-tiny_1xb4-3k_synthetic-cityscapes-', 3000,
                        'param_scheduler.1.end', 0.25),  # warm-up + poly
    'mask2former': Net('mask2former_r18-tiny_1xb4-2k_synthetic-cityscapes-', 2000,
                       'param_scheduler.end', 0.5),
    # beyond the paper. MaskFormer (panoptic) and SOLOv2 and CondInst (instance segmentation):
    # measured 2026-12-07 as two one-thread runs side by side on 2 idle cores (the 3.4 s and 2.0 s
    # of SOLOv2 and CondInst measured earlier were a third run squeezed beside two others)
    'maskformer': Net('maskformer_r18-tiny_1xb4-1k_synthetic-cityscapes-', 1000,
                      'param_scheduler.end', 1.0),
    'solov2': Net('solov2_r18-tiny_1xb4-3k_synthetic-cityscapes-', 3000, 'param_scheduler.1.end',
                  0.5, ibs_head='mask_head', task='instance'),
    'condinst': Net('condinst_r18-tiny_1xb4-3k_synthetic-cityscapes-', 3000,
                    'param_scheduler.1.end', 0.25, ibs_head='mask_head', task='instance'),
}
EVAL_SEC = 60  # tools/test.py start-up + 30 validation images
METRICS = ('PQ', 'PQ_th', 'PQ_st', 'Acc_th', 'Prec_th')
TASK_METRICS = {'panoptic': METRICS, 'instance': ('mAP', 'AP@50')}
TAG = '[study]'


def task_of(net: str) -> str:
    """``net``'s task; a network no longer in ``NETS`` (an older study json) was panoptic."""
    return NETS[net].task if net in NETS else 'panoptic'


def net_metrics(net: str) -> tuple:
    """The metrics (percent) the study reports for ``net``."""
    return TASK_METRICS[task_of(net)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='study_out', help='output folder (default: study_out)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='randomness.seed of each run (default: 0 1 2)')
    parser.add_argument('--middle-seeds', type=int, nargs='+', default=None,
                        help='seeds of the two middle models, ibs and cropsamp, when the run time '
                        'forces fewer (default: --seeds; baseline and cropsamp+ibs always run '
                        'every --seeds)')
    parser.add_argument('--nets', nargs='+', default=['panoptic_fcn', 'mask2former'],
                        choices=list(NETS),
                        help='networks (default: the paper\'s, panoptic_fcn mask2former; '
                        'beyond the paper: maskformer, panoptic; solov2 and condinst, instance '
                        'segmentation)')
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--iters', nargs='+', default=[],
                        help='training iterations: N for every network, or NET=N for one '
                        '(e.g. "solov2=1500 condinst=1500"); the others keep their schedule '
                        f'(Panoptic FCN {NETS["panoptic_fcn"].iters}, Mask2Former '
                        f'{NETS["mask2former"].iters})')
    parser.add_argument('--num-train', type=int, default=1000, help='synthetic training images')
    parser.add_argument('--num-val', type=int, default=30, help='synthetic validation images')
    parser.add_argument('--height', type=int, default=256, help='synthetic image height')
    parser.add_argument('--width', type=int, default=512, help='synthetic image width')
    parser.add_argument('--data-seed', type=int, default=0, help='seed of the synthetic data')
    parser.add_argument('--cropsamp-scales', type=int, nargs='+', default=None,
                        help='target scales of the crop-sampling models (default: the configs\' '
                        '8 16 32 64 128, the released 32-512 / 4); use another --out')
    parser.add_argument('--ibs-weight', type=float, default=None,
                        help='loss_weight of the IBS loss of the IBS models (default: the '
                        'configs\' released values, Panoptic FCN 4 = segment 4 x IBS 1, '
                        'Mask2Former 50); use another --out')
    parser.add_argument('--ibs-partner', choices=['pair', 'random', 'all'], default=None,
                        help='partner image of the IBS models (default: the configs\', \'pair\' '
                        'with crop sampling, \'random\' without); use another --out')
    parser.add_argument('--val-interval', type=int, default=None,
                        help='also validate every N iterations during training and keep the '
                        'curve (PQ, PQ_th, PQ_st over iterations) in each run\'s metrics.json and '
                        'the study\'s curves.md/png; the runs end as without it (RNGStateHook)')
    parser.add_argument('--jobs', type=int, default=default_jobs(),
                        help='runs trained at the same time, each with OMP_NUM_THREADS = CPU cores '
                        '/ jobs unless OMP_NUM_THREADS is set (default: 2 on 2 or more cores: two '
                        'one-thread runs side by side do 1.5x the iterations per second of one '
                        'two-thread run on 2 cores)')
    parser.add_argument('--fig-images', type=int, default=3,
                        help='validation images drawn in the confusion figures')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    if 'baseline' not in args.models:
        parser.error('--models must include "baseline" (the differences are paired with it)')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds has duplicates: {args.seeds}')
    try:
        args.iters = parse_iters(args.iters, args.nets)
    except ValueError as e:
        parser.error(str(e))
    if args.middle_seeds is None:
        args.middle_seeds = list(args.seeds)
    elif not set(args.middle_seeds) <= set(args.seeds) or len(set(args.middle_seeds)) != len(
            args.middle_seeds):
        parser.error(f'--middle-seeds {args.middle_seeds} must be distinct seeds of --seeds '
                     f'{args.seeds} (the differences are paired with the baseline)')
    return args


MIDDLE_MODELS = ('ibs', 'cropsamp')


def parse_iters(values: list, nets: list) -> Dict[str, int]:
    """``--iters`` as ``{net: iterations}`` for ``nets``: one number sets every network, ``NET=N``
    one of them; a network not named keeps its ``NETS`` schedule.

    Raises:
        ValueError: naming the item that is not a positive count, a network outside ``nets``
            or a network given twice.
    """
    iters = {n: NETS[n].iters for n in nets}
    named = set()
    for value in values:
        net, _, count = value.rpartition('=')
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f'--iters {value!r}: expected N or NET=N with N >= 1')
        targets = [net] if net else list(nets)
        if net and net not in nets:
            raise ValueError(f'--iters {value!r}: {net!r} is not one of --nets {nets}')
        if named & set(targets):
            raise ValueError(f'--iters {value!r}: {", ".join(sorted(named & set(targets)))} '
                             'already given')
        named |= set(targets)
        iters.update({n: int(count) for n in targets})
    return iters


def study_plan(nets: list, models: list, seeds: list, middle_seeds: list) -> list:
    """``(net, model, seed)`` of every run: per network the baseline and the released recipe
    for every seed first, then the middle models for ``middle_seeds`` (a study cut short still
    has its main comparison)."""
    plan = []
    for net in nets:
        plan += [(net, m, s) for s in seeds for m in models if m not in MIDDLE_MODELS]
        plan += [(net, m, s) for s in middle_seeds for m in models if m in MIDDLE_MODELS]
    return plan


def make_data(args, out: str, tag: str = TAG) -> str:
    """The synthetic set, written once per size/seed (``data/spec.json`` records them).

    ``args`` holds ``num_train``, ``num_val``, ``height``, ``width`` and ``data_seed``; ``tag``
    names the caller in messages.
    """
    data_root = osp.join(out, 'data', 'cityscapes') + '/'
    spec = dict(num_train=args.num_train, num_val=args.num_val, height=args.height,
                width=args.width, seed=args.data_seed)
    spec_file = osp.join(out, 'data', 'spec.json')
    if osp.exists(spec_file):
        with open(spec_file) as f:
            if json.load(f) == spec:
                print(f'{tag} data: reusing {data_root}', flush=True)
                return data_root
        raise SystemExit(f'{tag} {spec_file} was written for other data options than {spec}; '
                         'use another --out or the same options')
    os.makedirs(osp.join(out, 'logs'), exist_ok=True)
    print(f'{tag} data: {args.num_train} train + {args.num_val} val images of '
          f'{args.height}x{args.width} -> {data_root}', flush=True)
    make_dataset(data_root, args.num_train, args.num_val, args.height, args.width, args.data_seed,
                 log_dir=osp.join(out, 'logs'), echo=False, tag=tag)
    with open(spec_file, 'w') as f:
        json.dump(spec, f)
    return data_root


def task_kwargs(net: str) -> dict:
    """``train_and_test``'s evaluation arguments for ``net`` (none for the panoptic nets)."""
    return {} if task_of(net) == 'panoptic' else dict(task=task_of(net))


def curve_kwargs(net: str) -> dict:
    """``read_val_curve``'s arguments for ``net`` (none for the panoptic nets)."""
    if task_of(net) == 'panoptic':
        return {}
    return dict(keys=curve_keys(net), task=task_of(net))


def run_dir(out: str, net: str, model: str, seed: int) -> str:
    return osp.join(out, 'runs', net, model.replace('+', '_'), f'seed{seed}')


def study_run(net: str,
              model: str,
              seed: int,
              iters: int,
              data_root: str,
              out: str,
              cropsamp_scales=None,
              threads: int = None,
              ibs_weight: float = None,
              ibs_partner: str = None,
              val_interval: int = None) -> dict:
    """One run; returns its metrics (read from ``metrics.json`` when it is already done).

    ``val_interval``: also validate every that many iterations during training; the result's
    ``curve`` holds those validations (RNGStateHook in the configs keeps the training's random
    streams, so the run ends with the weights of a run without them).
    """
    wd = run_dir(out, net, model, seed)
    metrics_file = osp.join(wd, 'metrics.json')
    if osp.exists(metrics_file):
        with open(metrics_file) as f:
            done = json.load(f)
        if done.get('iters') == iters:
            return done
    config = NETS[net].configs[model]
    nested = model.startswith('cropsamp')
    os.makedirs(wd, exist_ok=True)
    options = schedule_options(iters, NETS[net].poly_key) + [f'randomness.seed={seed}']
    if nested and cropsamp_scales:
        options.append('train_dataloader.dataset.scales=[' + ','.join(map(str, cropsamp_scales))
                       + ']')
    if model.endswith('ibs') and ibs_weight is not None:
        options.append(f'model.{NETS[net].ibs_head}.loss_ibs.loss_weight={ibs_weight}')
    if model.endswith('ibs') and ibs_partner is not None:
        options.append(f'model.{NETS[net].ibs_head}.loss_ibs.partner={ibs_partner}')
    if val_interval:
        options.append(f'train_cfg.val_interval={val_interval}')
    metrics, checkpoint, _ = train_and_test(
        config, iters, data_root, nested, osp.join(wd, 'train'), osp.join(wd, 'test'), options,
        (osp.join(wd, 'train.log'), osp.join(wd, 'test.log')), threads, echo=False, tag=TAG,
        **task_kwargs(net))
    result = dict(net=net, model=model, seed=seed, iters=iters, config=config,
                  checkpoint=osp.relpath(checkpoint, out), metrics=metrics,
                  curve=read_val_curve(osp.join(wd, 'train'), **curve_kwargs(net)))
    tmp = metrics_file + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, metrics_file)  # the marker of a finished run: written last, atomically
    return result


def mean_std(values) -> tuple:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float('nan')


def t_interval(diffs) -> tuple:
    """Mean of paired differences and its 95% t-interval half-width (nan below 2 seeds)."""
    from scipy import stats
    d = np.asarray(diffs, dtype=np.float64)
    if len(d) < 2:
        return float(d.mean()), float('nan')
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean()), float(half)


def summarise(results: list, nets: list, models: list) -> dict:
    """{net: {model: {metric: {mean, std, n, diff, ci95}}}}, differences paired by seed."""
    by = {(r['net'], r['model'], r['seed']): r['metrics'] for r in results}
    summary = {}
    for net in nets:
        summary[net] = {}
        for model in models:
            seeds = sorted(s for (n, m, s) in by if n == net and m == model)
            entry = {}
            for key in net_metrics(net):
                vals = [by[(net, model, s)][key] for s in seeds]
                mean, std = mean_std(vals)
                paired = [s for s in seeds if (net, 'baseline', s) in by]
                diff, ci = t_interval(
                    [by[(net, model, s)][key] - by[(net, 'baseline', s)][key] for s in paired])
                entry[key] = dict(mean=mean, std=std, n=len(vals), values=vals, diff=diff,
                                  ci95=ci)
            summary[net][model] = entry
    return summary


def plus_minus(value: float, spread: float, fmt: str = '.1f') -> str:
    """``value ± spread``; the value alone where one seed gives no spread (nan)."""
    return f'{value:{fmt}}' if math.isnan(spread) else f'{value:{fmt}} ± {spread:.1f}'


def format_markdown(summary: dict, iters: dict, seeds: list, args) -> str:
    lines = [
        '# IBS study on synthetic Cityscapes-layout data\n',
        f'Seeds {seeds}'
        + (f' (ibs and cropsamp: {args.middle_seeds})' if args.middle_seeds != seeds else '')
        + f'; {args.num_train} training and {args.num_val} validation images of '
        f'{args.height}x{args.width}; iterations: '
        + ', '.join(f'{n} {i}' for n, i in iters.items())
        + (f'; crop-sampling scales {args.cropsamp_scales}' if args.cropsamp_scales else '')
        + (f'; IBS loss weight {args.ibs_weight:g}' if args.ibs_weight is not None else '')
        + (f'; IBS partner {args.ibs_partner}' if args.ibs_partner else '')
        + '. Cells: mean ± standard '
        'deviation over seeds (percent); Δ: mean paired difference to the baseline of the same '
        'network and seed ± the half-width of its 95% t-interval.\n'
    ]
    intro = len(lines)
    for task, metrics in TASK_METRICS.items():
        nets = [n for n in summary if task_of(n) == task]
        if not nets:
            continue
        if task == 'instance':
            after_table = len(lines) > intro  # a blank line after the panoptic table
            lines.append(('\n' if after_table else '') + 'Instance segmentation (SOLOv2, '
                         'CondInst): the official Cityscapes instance AP on the synthetic gtFine '
                         '(percent).\n')
        header = ('| net | model | ' + ' | '.join(metrics) + ' | '
                  + ' | '.join(f'Δ{k}' for k in metrics) + ' |')
        lines += [header, '|---' * (2 + 2 * len(metrics)) + '|']
        for net in nets:
            for model, entry in summary[net].items():
                cells = [plus_minus(entry[k]['mean'], entry[k]['std']) for k in metrics]
                if model == 'baseline':
                    deltas = ['-'] * len(metrics)
                else:
                    deltas = [
                        plus_minus(entry[k]['diff'], entry[k]['ci95'], '+.1f') for k in metrics
                    ]
                lines.append(f'| {net} | {model} | ' + ' | '.join(cells + deltas) + ' |')
    return '\n'.join(lines) + '\n'


def plot(summary: dict, path: str, metrics: tuple = METRICS) -> None:
    """Top row: mean ± std per metric; bottom row: paired difference ± 95% interval (the nets
    of ``summary``, which all report ``metrics``)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    nets = list(summary)
    models = list(next(iter(summary.values())))
    fig, axes = plt.subplots(2, len(metrics), figsize=(4 * len(metrics), 7), squeeze=False)
    width = 0.8 / len(models)
    x = np.arange(len(nets))
    for col, key in enumerate(metrics):
        for row, (field, err) in enumerate((('mean', 'std'), ('diff', 'ci95'))):
            ax = axes[row, col]
            for i, model in enumerate(models):
                vals = [summary[n][model][key][field] for n in nets]
                errs = [np.nan_to_num(summary[n][model][key][err]) for n in nets]
                ax.bar(x + (i - (len(models) - 1) / 2) * width, vals, width, yerr=errs,
                       capsize=3, label=model)
            ax.set_xticks(x)
            ax.set_xticklabels(nets)
            ax.set_title(key if row == 0 else f'{key} - baseline (95% CI)')
            if row == 1:
                ax.axhline(0, color='black', linewidth=0.8)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


CURVE_KEYS = ('PQ', 'PQ_th', 'PQ_st')
TASK_CURVE_KEYS = {'panoptic': CURVE_KEYS, 'instance': ('mAP', 'AP@50')}
#: the metric of each task that curves.md tabulates
CURVE_HEADLINE = {'panoptic': 'PQ_th', 'instance': 'mAP'}


def curve_keys(net: str) -> tuple:
    """The metrics of ``net`` kept at each validation during training."""
    return TASK_CURVE_KEYS[task_of(net)]


def summarise_curves(results: list) -> dict:
    """{net: {model: {'iters': [...], key: {'mean': [...], 'min': [...], 'max': [...],
    'n': seeds}}}} over the runs that validated during training (``--val-interval``), at the
    iterations all of a model's runs share."""
    curves = {}
    for r in results:
        if r.get('curve'):
            curves.setdefault(r['net'], {}).setdefault(r['model'], []).append(r['curve'])
    out = {}
    for net, models in curves.items():
        out[net] = {}
        for model, runs in models.items():
            iters = sorted(set.intersection(*(set(p['iter'] for p in c) for c in runs)))
            entry = {'iters': iters}
            for key in curve_keys(net):
                table = np.array([[{p['iter']: p[key] for p in c}[i] for i in iters]
                                  for c in runs])  # (runs, points)
                entry[key] = dict(mean=table.mean(0).tolist(), min=table.min(0).tolist(),
                                  max=table.max(0).tolist(), n=len(runs))
            out[net][model] = entry
    return out


def format_curves(curves: dict) -> str:
    """One table per network: PQ_th (instance nets: mAP; mean over seeds, min-max) at each
    validated iteration."""
    instance = any(task_of(net) == 'instance' for net in curves)
    also = '; mAP for the instance nets' if instance else ''
    lines = [f'# Validation during training (PQ_th{also}; mean over seeds, [min, max])\n']
    for net, models in curves.items():
        iters = sorted(set.union(*(set(e['iters']) for e in models.values())))
        headline = CURVE_HEADLINE[task_of(net)]
        title = net if headline == 'PQ_th' else f'{net} ({headline})'
        lines += [f'## {title}\n', '| model (seeds) | ' + ' | '.join(map(str, iters)) + ' |',
                  '|---' * (len(iters) + 1) + '|']
        for model, e in models.items():
            at = {i: k for k, i in enumerate(e['iters'])}
            cells = []
            for i in iters:
                if i not in at:
                    cells.append('-')
                    continue
                c = e[headline]
                cells.append(f'{c["mean"][at[i]]:.1f} [{c["min"][at[i]]:.1f}, '
                             f'{c["max"][at[i]]:.1f}]' if c['n'] > 1 else
                             f'{c["mean"][at[i]]:.1f}')
            lines.append(f'| {model} ({e[headline]["n"]}) | ' + ' | '.join(cells) + ' |')
        lines.append('')
    return '\n'.join(lines)


def plot_curves(curves: dict, path: str) -> None:
    """PQ, PQ_th and PQ_st over iterations, one row per network, one line per model
    (mean over seeds, shaded min-max)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    columns = max(len(curve_keys(net)) for net in curves)
    size = (4.5 * columns, 3.5 * len(curves))
    fig, axes = plt.subplots(len(curves), columns, figsize=size, squeeze=False)
    for row, (net, models) in enumerate(curves.items()):
        for col in range(len(curve_keys(net)), columns):
            axes[row, col].axis('off')
        for col, key in enumerate(curve_keys(net)):
            ax = axes[row, col]
            for model, e in models.items():
                c = e[key]
                ax.plot(e['iters'], c['mean'], marker='o', markersize=3,
                        label=f'{model} ({c["n"]})')
                if c['n'] > 1:
                    ax.fill_between(e['iters'], c['min'], c['max'], alpha=0.2)
            ax.set_title(f'{net}: {key}')
            ax.set_xlabel('iteration')
            ax.grid(alpha=0.3)
        axes[row, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def figures(net: str, models: list, seed: int, iters: int, data_root: str, out: str,
            max_images: int) -> str:
    """The confusion figures of ``seed``'s runs of ``net`` (once: ``.done`` marks them)."""
    fig_dir = osp.join(out, 'figures', net)
    done = osp.join(fig_dir, '.done')
    if osp.exists(done):
        return fig_dir
    checkpoints = [
        osp.join(run_dir(out, net, m, seed), 'train', f'iter_{iters}.pth') for m in models
    ]
    configs = [NETS[net].configs[m] for m in models]
    confusion_figures(checkpoints, configs, models, data_root, fig_dir, max_images,
                      osp.join(out, 'logs', f'figures_{net}.log'), echo=False, tag=TAG)
    open(done, 'w').close()
    return fig_dir


def main(argv=None):
    args = parse_args(argv)
    out = osp.abspath(args.out)
    os.makedirs(osp.join(out, 'logs'), exist_ok=True)
    models = [m for m in MODELS if m in args.models]
    iters = args.iters
    plan = study_plan(args.nets, models, args.seeds, args.middle_seeds)
    estimate = {n: iters[n] * NETS[n].sec_per_iter + EVAL_SEC for n in args.nets}
    total = sum(estimate[n] for n, _, _ in plan)
    per_run = ', '.join(f'{n} {estimate[n] / 60:.1f} min/run' for n in args.nets)
    seeds_note = (f'{len(args.seeds)} seeds' if args.middle_seeds == args.seeds else
                  f'seeds {args.seeds} (ibs, cropsamp: {args.middle_seeds})')
    print(f'[study] {len(plan)} runs: {len(args.nets)} nets x {len(models)} models x '
          f'{seeds_note}; iterations {iters}; rough time with {args.jobs} jobs '
          f'{total / 3600 / args.jobs:.1f} h ({per_run}); finished runs are skipped', flush=True)
    data_root = make_data(args, out)

    t0, left = time.time(), total
    threads = threads_per_job(args.jobs)
    if args.jobs > 1:
        print(f'[study] {args.jobs} runs at a time, OMP_NUM_THREADS={threads or "inherited"} each',
              flush=True)

    def one_run(k, net, model, seed):
        tag = f'[study] run {k}/{len(plan)} {net} {model} seed {seed}'
        t_run = time.time()
        metrics_file = osp.join(run_dir(out, net, model, seed), 'metrics.json')
        cached = osp.exists(metrics_file)
        print(f'{tag}: ' + ('checking finished run' if cached else 'training + testing'),
              flush=True)
        result = study_run(net, model, seed, iters[net], data_root, out, args.cropsamp_scales,
                           threads, args.ibs_weight, args.ibs_partner, args.val_interval)
        return tag, t_run, result

    def report(done):
        nonlocal left
        tag, t_run, result = done
        left -= estimate[result['net']]
        took = time.time() - t_run
        keys = ('PQ', 'PQ_th', 'Prec_th') if task_of(result['net']) == 'panoptic' else (
            net_metrics(result['net']))
        print(f'{tag}: ' + ' '.join(f'{k} {result["metrics"][k]:.1f}' for k in keys)
              + f' ({took / 60:.1f} min; about {left / 60 / args.jobs:.0f} min left)', flush=True)

    results = [result for _, _, result in run_side_by_side(plan, one_run, args.jobs, report)]

    summary = summarise(results, args.nets, models)
    table = format_markdown(summary, iters, args.seeds, args)
    with open(osp.join(out, 'study.md'), 'w') as f:
        f.write(table)
    with open(osp.join(out, 'study.json'), 'w') as f:
        json.dump(dict(iters=iters, seeds=args.seeds, middle_seeds=args.middle_seeds,
                       val_interval=args.val_interval, num_train=args.num_train,
                       num_val=args.num_val, size=[args.height, args.width],
                       data_seed=args.data_seed,
                       cropsamp_scales=args.cropsamp_scales, ibs_weight=args.ibs_weight,
                       ibs_partner=args.ibs_partner,
                       summary=summary,
                       runs=results), f, indent=1)
    for task, metrics in TASK_METRICS.items():
        nets = [n for n in args.nets if task_of(n) == task]
        if nets:  # one plot per metric set: study.png (panoptic), study_instance.png
            name = 'study.png' if task == 'panoptic' else 'study_instance.png'
            plot({n: summary[n] for n in nets}, osp.join(out, name), metrics)
    curves = summarise_curves(results)
    if curves:
        with open(osp.join(out, 'curves.md'), 'w') as f:
            f.write(format_curves(curves))
        with open(osp.join(out, 'curves.json'), 'w') as f:
            json.dump(curves, f, indent=1)
        plot_curves(curves, osp.join(out, 'curves.png'))
    # the confusion figures draw panoptic results: the panoptic nets only
    figs = [
        figures(n, models, args.seeds[0], iters[n], data_root, out, args.fig_images)
        for n in args.nets if task_of(n) == 'panoptic'
    ]
    print(table)
    print(f'[study] done in {(time.time() - t0) / 60:.1f} min; table {out}/study.md, '
          f'{out}/study.json; plot {out}/study*.png; '
          + (f'curves {out}/curves.md, {out}/curves.png; ' if curves else '')
          + (f'figures {", ".join(figs)}' if figs else 'no confusion figures (instance nets)'))


if __name__ == '__main__':
    main()
