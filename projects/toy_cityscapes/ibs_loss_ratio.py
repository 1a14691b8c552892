# Copyright (c) mmibs contributors. All rights reserved.
"""How large the IBS loss is next to the original losses, for both tiny networks: the numbers
behind the tiny Mask2Former's IBS weight.

The paper sets Mask2Former's lambda_IBS so that the ratio of the IBS loss to the original losses is
similar to Panoptic FCN's at its weight. This tool measures both ratios on the synthetic
Cityscapes-layout data (make_synthetic.py + the real converter, as the study does): it trains the
tiny Panoptic FCN at its released IBS weight (segment 4 x IBS 1) and the tiny Mask2Former at its
configured weight through ``tools/train.py`` (runs.py), logging every iteration's losses, and
reads them from mmengine's ``vis_data/scalars.json`` of each run. For each network and seed it
reports, as means over the last ``--tail`` of the iterations:

- the weighted IBS loss: the sum of the ``loss_ibs*`` keys (Mask2Former: ``loss_ibs`` of the last
  layer and ``d{l}.loss_ibs`` of the auxiliary ones);
- the other losses: the sum of every other loss key (what mmengine adds into ``loss`` beside IBS);
- their ratio (mean weighted IBS / mean other losses) and the raw IBS loss (weighted / weight);

and the Mask2Former weight that gives Panoptic FCN's ratio,
``lambda_m2f_new = lambda_m2f * ratio_pfcn / ratio_m2f``. This assumes the weighted IBS loss
scales linearly with its weight at a fixed training state; training with another weight changes
the state (the raw IBS loss and the other losses), so the number is a first-order estimate, to be
checked by measuring again with ``--weight NET=W`` set to it (same ``--out``).

Other networks (``--nets``, default ``mask2former``): ``maskformer`` (panoptic; IBS keys as
Mask2Former's, on all its decoder layers), ``solov2`` and ``condinst`` (IBS on instance
segmentation) are measured the same way, each with the weight that gives Panoptic FCN's ratio.

Models (``--models``): ``cropsamp+ibs`` (default), the released recipe of both networks (crop
sampling, IBS between the two crops of each pair), the one the paper's rule sets the weight for;
``ibs``, plain crops with a random partner, as a comparison. Each model of one network is paired
with the same model and seed of the other.

Runs are the study's (ibs_study.py: same configs, data, schedules and seeds, ``--jobs`` runs at a
time with one thread each on 2 cores) except that every iteration is logged and nothing is
evaluated. Resumable: a run whose ``losses.json`` exists (``OUT/runs/NET/MODEL/seedS/weightW``) is
not retrained, so a second ``--weight mask2former=W`` with the same ``--out`` trains only the
Mask2Former runs. Outputs (of the latest command): ``OUT/ibs_loss_ratio.json`` (settings, the
summary, and per run the losses of the averaged iterations as read) and ``OUT/ibs_loss_ratio.md``.
Study runs (``--from-study STUDY_OUT``): the ratio of runs ibs_study.py already trained, read
from their logs instead of training new ones. The study logs every 50th iteration the mean of the
last 50 (``logger.interval`` = ``log_processor.window_size``), so the last ``--tail`` is averaged
over whole logged windows (it must be a whole number of them); the weight and the schedule are
read from the config each run dumped. This measures the rule at the study's schedules (Panoptic
FCN 3,000, Mask2Former 2,000 iterations on 1,000 scenes) at no training cost; STUDY_OUT must hold
both networks' released recipe for every ``--seeds``.

Time: 9 minutes for seeds 0 and 1 on 2 cores on the first study's 24 scenes (measured: two
one-thread runs side by side, Panoptic FCN 0.25 s and Mask2Former 0.45 s per iteration), plus
about 2 minutes to write the default 1,000 scenes once; ``--nets maskformer solov2 condinst --seeds
0 1 --iters 500``: 23 minutes. The estimate printed at start uses the study's per-iteration times.

Usage::

    python -m projects.toy_cityscapes.ibs_loss_ratio --out ratio_out --seeds 0 1
    python -m projects.toy_cityscapes.ibs_loss_ratio --out ratio_out --seeds 0 1 \
        --weight mask2former=5        # only Mask2Former is trained again
    python -m projects.toy_cityscapes.ibs_loss_ratio --out ratio_out --seeds 0 1 2 \
        --num-train 24 --iters panoptic_fcn=1200 mask2former=500   # the first study's runs
    python -m projects.toy_cityscapes.ibs_loss_ratio --out heads_out --seeds 0 1 --iters 500 \
        --nets maskformer solov2 condinst   # the weights of the heads beyond the paper
    python -m projects.toy_cityscapes.ibs_loss_ratio --out ratio_study --seeds 0 1 2 \
        --from-study study_out              # the study's runs, nothing trained
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import re
import sys
import time
from typing import Dict, List

import numpy as np

from .ibs_study import NETS, make_data, parse_iters, run_dir
from .runs import (REPO, data_options, default_jobs, run_side_by_side, run_tool, schedule_options,
                   threads_per_job)

TAG = '[ibs-ratio]'
IBS_MODELS = ('ibs', 'cropsamp+ibs')
REFERENCE, ADJUSTED = 'panoptic_fcn', 'mask2former'
#: the networks whose weight the reference's ratio sets (--nets), as the tables name them
ADJUSTABLE = {
    'mask2former': 'Mask2Former',
    'maskformer': 'MaskFormer',
    'solov2': 'SOLOv2',
    'condinst': 'CondInst'
}
ASSUMPTION = ('The implied weight assumes that the weighted IBS loss scales linearly with its '
              'weight at a fixed training state. Training with another weight changes the '
              'state (the raw IBS loss and the other losses), so it is a first-order estimate: '
              'measure again with --weight NET=W set to it.')


def say(line: str) -> None:
    """Print a progress line in one write, so that the lines of runs side by side stay whole."""
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='ibs_ratio_out',
                        help='output folder (default: ibs_ratio_out)')
    parser.add_argument('--nets', nargs='+', default=[ADJUSTED], choices=list(ADJUSTABLE),
                        help='networks measured next to Panoptic FCN, each with the weight that '
                        'gives its ratio (default: mask2former; solov2 and condinst: IBS on '
                        'instance segmentation)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='randomness.seed of each run (default: 0)')
    parser.add_argument('--models', nargs='+', default=['cropsamp+ibs'], choices=IBS_MODELS,
                        help='IBS models measured for both networks (default: cropsamp+ibs, the '
                        'released recipe)')
    parser.add_argument('--iters', nargs='+', default=[],
                        help='training iterations: N for every run, or NET=N for one network\'s '
                        '(e.g. "panoptic_fcn=1200 mask2former=500", the first study\'s); the '
                        f'others keep the study\'s (Panoptic FCN {NETS[REFERENCE].iters}, '
                        f'Mask2Former {NETS[ADJUSTED].iters})')
    parser.add_argument('--tail', type=float, default=0.25,
                        help='fraction of the last iterations averaged (default: 0.25)')
    parser.add_argument('--weight', nargs='+', default=[], metavar='NET=W',
                        help='loss_weight of the IBS loss of a measured network (default: its '
                        'config\'s), e.g. "mask2former=22 solov2=1.3"')
    parser.add_argument('--mask2former-weight', type=float, default=None,
                        help='the same as --weight mask2former=W')
    parser.add_argument('--num-train', type=int, default=1000,
                        help='synthetic training images (default: 1000, the study\'s)')
    parser.add_argument('--num-val', type=int, default=30,
                        help='synthetic validation images (written, not used)')
    parser.add_argument('--height', type=int, default=256, help='synthetic image height')
    parser.add_argument('--width', type=int, default=512, help='synthetic image width')
    parser.add_argument('--data-seed', type=int, default=0, help='seed of the synthetic data')
    parser.add_argument('--jobs', type=int, default=default_jobs(),
                        help='runs trained at the same time, each with OMP_NUM_THREADS = CPU cores '
                        '/ jobs unless OMP_NUM_THREADS is set (default: 2 on 2 or more cores, as '
                        'the study)')
    parser.add_argument('--from-study', default=None, metavar='STUDY_OUT',
                        help='read the runs ibs_study.py trained in STUDY_OUT (its --out) instead '
                        'of training: weights, schedules and data as those runs had them')
    args = parser.parse_args(argv)
    if args.from_study is not None:
        given = [name for name, value in (('--iters', args.iters), ('--weight', args.weight), (
            '--mask2former-weight', args.mask2former_weight)) if value]
        if given:
            parser.error(f'--from-study reads the schedule and the weight of each run from its '
                         f'config; drop {" and ".join(given)}')
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    if not 0 < args.tail <= 1:
        parser.error(f'--tail must be in (0, 1], got {args.tail}')
    if args.mask2former_weight is not None and args.mask2former_weight <= 0:
        parser.error(f'--mask2former-weight must be > 0, got {args.mask2former_weight}')
    try:
        args.weights = parse_weights(args.weight, args.nets)
    except ValueError as e:
        parser.error(str(e))
    if args.mask2former_weight is not None:
        if ADJUSTED not in args.nets:
            parser.error(f'--mask2former-weight: {ADJUSTED} is not one of --nets {args.nets}')
        if ADJUSTED in args.weights:
            parser.error('--mask2former-weight and --weight mask2former=W: give one')
        args.weights[ADJUSTED] = args.mask2former_weight
    try:
        args.iters = parse_iters(args.iters, [REFERENCE, *args.nets])
    except ValueError as e:
        parser.error(str(e))
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds has duplicates: {args.seeds}')
    return args


def parse_weights(values: List[str], nets: List[str]) -> Dict[str, float]:
    """``--weight`` as ``{net: weight}``.

    Raises:
        ValueError: naming the item that is not ``NET=W`` with ``W > 0``, names a network outside
            ``nets`` (Panoptic FCN, the reference, keeps its released weight) or repeats one.
    """
    weights = {}
    for value in values:
        net, _, weight = value.partition('=')
        try:
            weight = float(weight)
        except ValueError:
            weight = math.nan
        if not weight > 0:
            raise ValueError(f'--weight {value!r}: expected NET=W with W > 0')
        if net not in nets:
            raise ValueError(f'--weight {value!r}: {net!r} is not one of --nets {nets}')
        if net in weights:
            raise ValueError(f'--weight {value!r}: {net} already given')
        weights[net] = weight
    return weights


def config_ibs_weight(config: str, head: str = 'panoptic_head') -> float:
    """``loss_weight`` of the IBS loss in ``config`` (a path relative to the repository root),
    held by ``model.<head>``."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    loss_ibs = cfg.model[head].get('loss_ibs')
    if not loss_ibs:
        raise SystemExit(f'{TAG} {config} has no model.{head}.loss_ibs')
    return float(loss_ibs.get('loss_weight', 1.0))


def is_ibs_key(key: str) -> bool:
    """``loss_ibs``, ``loss_ibs_th``, ``d1.loss_ibs``: the last dotted part names the loss."""
    return key.split('.')[-1].startswith('loss_ibs')


def is_part_key(key: str) -> bool:
    """A loss term: a key that mmengine's ``parse_losses`` adds into ``loss``, except ``loss``."""
    return 'loss' in key and key != 'loss'


def read_scalars(train_dir: str, iters: int, interval: int = 1) -> List[dict]:
    """The logged training scalars, in order, from the newest ``scalars.json`` under
    ``train_dir`` (mmengine's LocalVisBackend writes one json line per logged iteration): every
    iteration's, or with ``interval`` > 1 those of iterations ``interval``, ``2 * interval``, ...
    ``iters`` (each the mean of its window; mmengine also logs an early iteration, dropped)."""
    files = sorted(glob.glob(osp.join(train_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise SystemExit(f'{TAG} no */vis_data/scalars.json under {train_dir}')
    with open(files[-1]) as f:  # the timestamped folder names sort by time
        entries = [json.loads(line) for line in f if line.strip()]
    # training iterations (validation has no loss)
    entries = [e for e in entries if 'loss' in e and e['step'] % interval == 0]
    steps = [e['step'] for e in entries]
    if steps != list(range(interval, iters + 1, interval)):
        if interval == 1:
            raise SystemExit(f'{TAG} {files[-1]}: expected the losses of iterations 1..{iters}, '
                             f'one line each, found steps {steps[:3]}...{steps[-3:]} '
                             f'({len(steps)} lines); the training must log every iteration with '
                             'window_size 1')
        raise SystemExit(f'{TAG} {files[-1]}: expected the losses logged at iterations '
                         f'{interval}, {2 * interval}, ... {iters}, found {steps[:3]}...'
                         f'{steps[-3:]} ({len(steps)} windows)')
    return entries


def split_losses(entries: List[dict], source: str = '') -> Dict[str, list]:
    """Per iteration: the weighted IBS loss (``loss_ibs*`` keys) and the other losses' sum, and
    every loss key (``parts``)."""
    keys = sorted({k for e in entries for k in e if is_part_key(k)})
    ibs_keys = [k for k in keys if is_ibs_key(k)]
    if not ibs_keys:
        raise SystemExit(f'{TAG} {source}: no loss_ibs* key among the logged losses {keys}; is '
                         'it an IBS config?')
    ibs, other = [], []
    for e in entries:
        missing = [k for k in keys if k not in e]
        if missing:
            raise SystemExit(f'{TAG} {source}: step {e["step"]} lacks {missing}')
        ibs.append(sum(e[k] for k in ibs_keys))
        other.append(sum(e[k] for k in keys if k not in ibs_keys))
        # the terms add up to the logged total (mmengine sums them into `loss`)
        if not math.isclose(ibs[-1] + other[-1], e['loss'], rel_tol=1e-4, abs_tol=1e-5):
            raise SystemExit(f'{TAG} {source}: step {e["step"]}: the loss terms sum to '
                             f'{ibs[-1] + other[-1]} but loss is {e["loss"]}')
    return dict(ibs_keys=ibs_keys, ibs=ibs, other=other,
                parts={k: [e[k] for e in entries] for k in keys})


def tail_length(iters: int, tail: float) -> int:
    """Iterations averaged: the last ``tail`` of ``iters``, at least one."""
    return max(1, int(round(iters * tail)))


def summarise_run(losses: dict, weight: float, tail: float) -> dict:
    """Means over the last ``tail`` of the iterations, the ratio and the raw IBS loss."""
    n = tail_length(len(losses['ibs']), tail)
    ibs = float(np.mean(losses['ibs'][-n:]))
    other = float(np.mean(losses['other'][-n:]))
    return dict(tail_iters=n, weight=weight, ibs=ibs, other=other, ratio=ibs / other,
                raw_ibs=ibs / weight,
                parts={k: float(np.mean(v[-n:])) for k, v in losses['parts'].items()})


def implied_weight(m2f_weight: float, ratio_pfcn: float, ratio_m2f: float) -> float:
    """The Mask2Former (or other network's) weight giving Panoptic FCN's ratio, first order
    (linear in the weight)."""
    return m2f_weight * ratio_pfcn / ratio_m2f


def weight_run_dir(out: str, net: str, model: str, seed: int, weight: float) -> str:
    """A run's folder: the study's layout with the IBS weight below the seed, so that runs at
    several Mask2Former weights share one ``--out`` and its Panoptic FCN runs."""
    return osp.join(run_dir(out, net, model, seed), f'weight{weight:g}')


def tail_record(run: dict, tail: float) -> dict:
    """What the summary json keeps of a run: its settings and the per-iteration weighted IBS and
    other losses of the averaged iterations (``tail_steps``: the first and last step); the whole
    curves and every key stay in the run's ``losses.json``."""
    window = run.get('window', 1)
    n = tail_length(len(run['ibs']), tail)  # averaged entries: iterations, or logged windows
    record = {k: run[k] for k in ('net', 'model', 'seed', 'iters', 'config', 'weight', 'source',
                                  'ibs_keys')}
    return dict(record, window=window, tail_steps=[run['iters'] - n * window + 1, run['iters']],
                ibs=run['ibs'][-n:], other=run['other'][-n:])


def dumps_compact(obj) -> str:
    """``json.dumps(obj, indent=1)`` with every list of numbers on one line."""
    text = json.dumps(obj, indent=1)
    return re.sub(r'\[[-+0-9.eE,\s]*\]', lambda m: ' '.join(m.group(0).split()), text) + '\n'


def train_run(net: str, model: str, seed: int, iters: int, data_root: str, out: str,
              weight: float, weight_option: bool, threads=None) -> dict:
    """Train one IBS model, logging every iteration; returns its per-iteration losses (read
    back from ``losses.json`` when this run is already done)."""
    wd = weight_run_dir(out, net, model, seed, weight)
    done_file = osp.join(wd, 'losses.json')
    if osp.exists(done_file):
        with open(done_file) as f:
            done = json.load(f)
        if done.get('iters') == iters and done.get('weight') == weight:
            return done
    config = NETS[net].configs[model]
    nested = model.startswith('cropsamp')
    train_dir = osp.join(wd, 'train')
    os.makedirs(wd, exist_ok=True)
    options = [o for o in data_options(data_root, nested) if o.startswith('train_dataloader')]
    options += schedule_options(iters, NETS[net].poly_key) + [
        f'randomness.seed={seed}',
        # every iteration's own losses in scalars.json (no smoothing window)
        'default_hooks.logger.interval=1', 'log_processor.window_size=1',
        # no evaluation: the losses are all this tool reads
        'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None'
    ]
    if weight_option:
        options.append(f'model.{NETS[net].ibs_head}.loss_ibs.loss_weight={weight}')
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', train_dir, '--cfg-options',
              *options], osp.join(wd, 'train.log'), threads, echo=False, tag=TAG)
    source = osp.relpath(train_dir, out)
    losses = split_losses(read_scalars(train_dir, iters), source)
    result = dict(net=net, model=model, seed=seed, iters=iters, config=config, weight=weight,
                  source=source, **losses)
    tmp = done_file + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f)
    os.replace(tmp, done_file)  # the marker of a finished run: written last, atomically
    return result


def read_study_run(study: str, net: str, model: str, seed: int, tail: float) -> dict:
    """The losses of a run ibs_study.py trained in ``study``, as ``train_run`` returns them, one
    entry per logged window of ``window`` iterations (their mean, as mmengine logs it).

    Raises:
        SystemExit: naming the folder or file when the run is missing or unfinished, is not an IBS
            run, was not logged in whole windows, or ``tail`` is not a whole number of them.
    """
    from mmengine.config import Config
    wd = run_dir(study, net, model, seed)
    train_dir = osp.join(wd, 'train')
    configs = sorted(glob.glob(osp.join(train_dir, '*.py')))  # the config tools/train.py dumped
    if not configs:
        raise SystemExit(f'{TAG} {train_dir}: no trained run (no dumped config); train it with '
                         f'ibs_study.py --out {study} --nets {net} --models {model} '
                         f'--seeds {seed}')
    if not osp.exists(osp.join(wd, 'metrics.json')):
        raise SystemExit(f'{TAG} {wd}: the run has not finished (no metrics.json)')
    cfg = Config.fromfile(configs[-1])
    head = NETS[net].ibs_head
    loss_ibs = cfg.model[head].get('loss_ibs')
    if not loss_ibs:
        raise SystemExit(f'{TAG} {configs[-1]}: no model.{head}.loss_ibs; not an IBS run')
    iters = int(cfg.train_cfg.max_iters)
    interval = int(cfg.default_hooks.logger.interval)
    window = cfg.log_processor.get('window_size', 10)
    if window != interval:
        raise SystemExit(f'{TAG} {configs[-1]}: log_processor.window_size {window} is not '
                         f'default_hooks.logger.interval {interval}: the logged losses are not '
                         'the means of every iteration')
    if iters % interval or tail_length(iters, tail) % interval:
        raise SystemExit(f'{TAG} {configs[-1]}: the last {tail:g} of {iters} iterations '
                         f'({tail_length(iters, tail)}) is not a whole number of the '
                         f'{interval}-iteration windows logged; choose another --tail')
    entries = read_scalars(train_dir, iters, interval)
    source = osp.relpath(train_dir, study)
    return dict(net=net, model=model, seed=seed, iters=iters, config=osp.basename(configs[-1]),
                weight=float(loss_ibs.get('loss_weight', 1.0)), source=source, window=interval,
                **split_losses(entries, source))


def study_settings(study: str, runs: List[dict], args) -> dict:
    """``{net: iterations}`` of the study's runs (one schedule per network), and ``args``' data
    fields set from the study's ``data/spec.json``."""
    iters = {}
    for r in runs:
        if iters.setdefault(r['net'], r['iters']) != r['iters']:
            raise SystemExit(f'{TAG} {study}: {r["net"]} runs of {iters[r["net"]]} and '
                             f'{r["iters"]} iterations; the ratio needs one schedule per network')
    spec_file = osp.join(study, 'data', 'spec.json')
    if not osp.exists(spec_file):
        raise SystemExit(f'{TAG} {spec_file} is missing: {study} is not an ibs_study.py --out '
                         'folder (the study writes its data settings there)')
    with open(spec_file) as f:
        spec = json.load(f)
    args.num_train, args.num_val = spec['num_train'], spec['num_val']
    args.height, args.width, args.data_seed = spec['height'], spec['width'], spec['seed']
    return iters


def add_implied_weights(entry: dict, nets: List[str]) -> None:
    """``entry['implied_weights'][net]`` for every adjusted net of ``entry`` (run summaries by
    net), and ``entry['implied_weight']``, Mask2Former's, when it is one of them."""
    entry['implied_weights'] = {
        net: implied_weight(entry[net]['weight'], entry[REFERENCE]['ratio'], entry[net]['ratio'])
        for net in nets
    }
    if ADJUSTED in nets:
        entry['implied_weight'] = entry['implied_weights'][ADJUSTED]


def summarise(runs: List[dict],
              models: List[str],
              seeds: List[int],
              tail: float,
              nets: List[str] = (ADJUSTED, )) -> dict:
    """{model: {per_seed: {seed: {net: run summary, implied_weights, implied_weight}}, mean:
    ...}}; ``nets``: the networks whose weight Panoptic FCN's ratio sets."""
    by = {(r['net'], r['model'], r['seed']): r for r in runs}
    summary = {}
    for model in models:
        per_seed = {}
        for seed in seeds:
            entry = {net: summarise_run(by[(net, model, seed)], by[(net, model, seed)]['weight'],
                                        tail) for net in (REFERENCE, *nets)}
            add_implied_weights(entry, nets)
            per_seed[str(seed)] = entry
        mean = {}
        for net in (REFERENCE, *nets):
            mean[net] = {
                key: float(np.mean([per_seed[str(s)][net][key] for s in seeds]))
                for key in ('weight', 'ibs', 'other', 'ratio', 'raw_ibs')
            }
        add_implied_weights(mean, nets)
        summary[model] = dict(per_seed=per_seed, mean=mean)
    return summary


def format_markdown(summary: dict, iters: dict, args) -> str:
    source = ''
    if args.from_study:
        source = (f' Runs of the study in {args.from_study}, read from their logs (each logged '
                  'value the mean of its window of iterations).')
    lines = [
        '# IBS loss next to the original losses\n',
        f'Seeds {args.seeds}; {args.num_train} training images of {args.height}x{args.width} '
        '(synthetic, data seed '
        f'{args.data_seed}); iterations: ' + ', '.join(f'{n} {i}' for n, i in iters.items())
        + f'; means over the last {args.tail:.0%} of the iterations. IBS: the weighted IBS loss '
        '(sum of the loss_ibs* keys); other: the sum of the other losses; ratio: IBS / other; '
        'raw IBS: IBS / weight.' + source + '\n'
    ]
    for model, entry in summary.items():
        lines += [f'## {model}\n', '| net | seed | weight | IBS | other | ratio | raw IBS |',
                  '|---|---|---|---|---|---|---|']
        rows = [(seed, e) for seed, e in entry['per_seed'].items()]
        if len(rows) > 1:
            rows.append(('mean', entry['mean']))
        nets = list(entry['mean']['implied_weights'])
        for seed, e in rows:
            for net in (REFERENCE, *nets):
                r = e[net]
                lines.append(f'| {net} | {seed} | {r["weight"]:g} | {r["ibs"]:.4g} | '
                             f'{r["other"]:.4g} | {r["ratio"]:.4g} | {r["raw_ibs"]:.4g} |')
        lines.append('')
        for net in nets:
            for seed, e in rows:
                which = 'mean ratios' if seed == 'mean' else f'seed {seed}'
                lines.append(f'- implied {ADJUSTABLE[net]} weight ({which}): '
                             f'{e[net]["weight"]:g} x {e[REFERENCE]["ratio"]:.4g} / '
                             f'{e[net]["ratio"]:.4g} = **{e["implied_weights"][net]:.3g}**')
        lines.append('')
    lines.append(ASSUMPTION)
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = parse_args(argv)
    out = osp.abspath(args.out)
    nets = (REFERENCE, *args.nets)
    if args.from_study:
        os.makedirs(out, exist_ok=True)
        return main_from_study(args, out, nets)
    os.makedirs(osp.join(out, 'logs'), exist_ok=True)
    iters = args.iters
    weights = {
        n: {m: config_ibs_weight(NETS[n].configs[m], NETS[n].ibs_head)
            for m in args.models}
        for n in nets
    }
    for net, weight in args.weights.items():
        weights[net] = {m: weight for m in args.models}
    plan = [(n, m, s) for s in args.seeds for m in args.models for n in nets]
    todo = [(n, m, s) for n, m, s in plan if not osp.exists(
        osp.join(weight_run_dir(out, n, m, s, weights[n][m]), 'losses.json'))]
    total = sum(iters[n] * NETS[n].sec_per_iter for n, _, _ in todo)
    print(f'{TAG} {len(plan)} runs: {len(nets)} nets x {len(args.models)} models x '
          f'{len(args.seeds)} seeds, {len(todo)} to train; iterations {iters}; IBS weights '
          f'{weights}; rough time with {args.jobs} jobs {total / 60 / args.jobs:.0f} min',
          flush=True)
    data_root = make_data(args, out, TAG)
    threads = threads_per_job(args.jobs)

    def one_run(k, net, model, seed):
        tag = f'{TAG} run {k}/{len(plan)} {net} {model} seed {seed}'
        wd = weight_run_dir(out, net, model, seed, weights[net][model])
        if osp.exists(osp.join(wd, 'losses.json')):
            say(f'{tag}: checking finished run {wd}')
        else:
            say(f'{tag}: training {iters[net]} iterations, IBS weight {weights[net][model]:g} '
                f'(log: {wd}/train.log)')
        t_run = time.time()
        result = train_run(net, model, seed, iters[net], data_root, out, weights[net][model],
                           net in args.weights, threads)
        return tag, t_run, result

    def report(done):
        tag, t_run, result = done
        s = summarise_run(result, result['weight'], args.tail)
        say(f'{tag}: IBS {s["ibs"]:.4g}, other {s["other"]:.4g}, ratio {s["ratio"]:.4g} (last '
            f'{s["tail_iters"]} iterations; {(time.time() - t_run) / 60:.1f} min)')

    t0 = time.time()
    runs = [result for _, _, result in run_side_by_side(plan, one_run, args.jobs, report)]
    write_results(runs, iters, args, out)
    print(f'{TAG} done in {(time.time() - t0) / 60:.1f} min; {out}/ibs_loss_ratio.md, '
          f'{out}/ibs_loss_ratio.json')


def main_from_study(args, out: str, nets) -> None:
    """``--from-study``: the summary of the study's runs, nothing trained."""
    study = osp.abspath(args.from_study)
    args.from_study = study
    runs = []
    for seed in args.seeds:
        for model in args.models:
            for net in nets:
                run = read_study_run(study, net, model, seed, args.tail)
                s = summarise_run(run, run['weight'], args.tail)
                say(f'{TAG} {net} {model} seed {seed}: {run["iters"]} iterations, IBS weight '
                    f'{run["weight"]:g}: IBS {s["ibs"]:.4g}, other {s["other"]:.4g}, ratio '
                    f'{s["ratio"]:.4g} (last {s["tail_iters"] * run["window"]} iterations, '
                    f'{s["tail_iters"]} logged windows; {run["source"]})')
                runs.append(run)
    iters = study_settings(study, runs, args)
    # the json's `weights`: here the weights the runs were trained with (training: --weight's)
    args.weights = {n: next(r['weight'] for r in runs if r['net'] == n) for n in args.nets}
    write_results(runs, iters, args, out)
    print(f'{TAG} done; {out}/ibs_loss_ratio.md, {out}/ibs_loss_ratio.json')


def write_results(runs: List[dict], iters: dict, args, out: str) -> None:
    """``OUT/ibs_loss_ratio.{md,json}`` from the runs' losses; prints the table."""
    nets = (REFERENCE, *args.nets)
    summary = summarise(runs, args.models, args.seeds, args.tail, args.nets)
    table = format_markdown(summary, iters, args)
    with open(osp.join(out, 'ibs_loss_ratio.md'), 'w') as f:
        f.write(table)
    with open(osp.join(out, 'ibs_loss_ratio.json'), 'w') as f:
        f.write(dumps_compact(dict(
            iters=iters, seeds=args.seeds, models=args.models, tail=args.tail,
            nets=list(nets), num_train=args.num_train, size=[args.height, args.width],
            data_seed=args.data_seed,
            mask2former_weight=args.weights.get(ADJUSTED), weights=args.weights,
            from_study=args.from_study, assumption=ASSUMPTION, summary=summary,
            runs=[tail_record(r, args.tail) for r in runs])))
    print(table)


if __name__ == '__main__':
    main()
