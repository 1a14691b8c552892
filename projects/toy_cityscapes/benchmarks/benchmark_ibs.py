# Copyright (c) mmibs contributors. All rights reserved.
"""Time and peak memory of IBS: a Mask2Former training step with and without IBS, and the IBS
loss alone against a naive (release-style) implementation.

Method:

- **Time.** Both variants live in one process, built from the same seed with the same weights,
  and run on the same synthetic batch. After ``--warmup`` steps each, ``--repeats`` rounds run
  the variants alternately (ABBA order, so slow drifts of a shared CPU hit both alike). The
  ratio is the IBS median over the baseline median.
- **Peak memory.** Each variant runs alone in a fresh subprocess (so allocator caches and the
  other variant do not blur it): it builds the model and the batch, resets the peak, does
  ``--warmup`` + 1 steps and reads the peak. On the CPU the peak is the kernel's peak resident set
  size (``common.py``; the torch profiler reports allocations per op, not the resident peak).
  On a GPU (``--device cuda``) it is ``torch.cuda.max_memory_allocated`` after
  ``torch.cuda.reset_peak_memory_stats``, the memory the tensors need (the caching allocator may
  reserve more). Two ratios are printed: of the whole peak during the steps (on the CPU: imports,
  weights, optimizer state, batch and activations; on the GPU: the tensors on the device) and of
  its increase over the memory in use before the steps (the step's own working memory).
- **GPU time.** With ``--device cuda`` every timed step ends with ``torch.cuda.synchronize``, so
  the time covers the kernels the step queued, not only their launch.

The model is mmdet's ``mask2former_r50_8xb2-lsj-50e_coco-panoptic.py`` set to Cityscapes' 8 thing
and 11 stuff classes, without pretrained weights; the IBS variant swaps in
``Mask2FormerIBSHead`` with the Cityscapes release's IBS (pair partner, 12544 points, weight 50).
The batch holds the synthetic street scenes of the demo (``synthetic.packed``); the loss-alone case
draws random embeddings, ``--things`` of them per image matched.

Examples::

    # the issue's setting (slow on a CPU: ~1 min per step)
    python -m projects.toy_cityscapes.benchmarks.benchmark_ibs
    # a quick run
    python -m projects.toy_cityscapes.benchmarks.benchmark_ibs --size 128 256 --depth 18 \\
        --repeats 1 --warmup 1 --num-points 1024
    # the IBS overhead on a GPU (needs a CUDA build of torch and of mmcv's ops)
    python -m projects.toy_cityscapes.benchmarks.benchmark_ibs --device cuda --repeats 10 \\
        --warmup 3
"""
import argparse
import gc
import json
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import mmdet
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import mmibs  # noqa: F401  (registers Mask2FormerIBSHead and IBSLoss)
from mmibs.datasets.cityscapes_panoptic import CITYSCAPES_STUFF_CLASSES, CITYSCAPES_THING_CLASSES
from mmibs.registry import MODELS
from ..synthetic.packed import packed_scenes
from .common import naive_ibs, proc_status_mb, reset_peak_rss, run_child

MMDET_CONFIG = 'mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py'
NUM_THINGS, NUM_STUFF = len(CITYSCAPES_THING_CLASSES), len(CITYSCAPES_STUFF_CLASSES)
MODEL_VARIANTS = ('mask2former', 'mask2former+ibs')
LOSS_VARIANTS = ('naive', 'IBSLoss')


#: Integer options: name -> (default, help).
INT_OPTIONS = {
    'batch': (2, 'images per step'),
    'things': (10, 'matched thing embeddings per image of the loss-alone case'),
    'depth': (50, 'ResNet depth of the backbone'),
    'num-points': (12544, 'points per mask of the mask loss and of IBS'),
    'queries': (100, 'queries of the loss-alone case'),
    'channels': (256, 'mask-embedding channels of the loss-alone case'),
    'warmup': (1, 'warm-up steps each'),
    'repeats': (3, 'timed steps per variant'),
    'seed': (0, 'seed'),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark the time and memory cost of IBS.')
    parser.add_argument(
        '--what',
        choices=['all', 'model', 'loss'],
        default='all',
        help='benchmark the Mask2Former step, the loss alone, or both (default: all)')
    parser.add_argument(
        '--size', type=int, nargs=2, default=[512, 1024], help='image H W (default: 512 1024)')
    for name, (default, text) in INT_OPTIONS.items():
        parser.add_argument(
            f'--{name}', type=int, default=default, help=f'{text} (default: {default})')
    parser.add_argument(
        '--ibs-weight', type=float, default=50.0, help='IBS loss weight (default: 50)')
    parser.add_argument(
        '--threads', type=int, default=None, help='torch threads (default: torch default)')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip the peak-memory subprocesses')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default='cpu',
        help='where the model and the loss run; cuda times with torch.cuda.synchronize and '
        'measures torch.cuda.max_memory_allocated (default: cpu)')
    parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error(f'--device cuda: CUDA is not available to this torch {torch.__version__} '
                     f'(built with CUDA {torch.version.cuda}); install a CUDA build of torch, '
                     'or use --device cpu')
    if args.batch < 2 or args.batch % 2:
        parser.error(f'--batch must be even and >= 2 (IBS pairs image i with i ^ 1), '
                     f'got {args.batch}')
    return args


# ------------------------------------------------------------------------------------------------
# Mask2Former step
def model_cfg(args: argparse.Namespace, with_ibs: bool) -> Config:
    """mmdet's Mask2Former R50 panoptic config, Cityscapes classes, optionally with IBS."""
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', MMDET_CONFIG))
    model = cfg.model
    model.data_preprocessor.batch_augments = None  # the synthetic batch has its final size
    model.backbone.depth = args.depth
    model.backbone.init_cfg = None
    if args.depth in (18, 34):
        model.panoptic_head.in_channels = [64, 128, 256, 512]
    head = model.panoptic_head
    head.num_things_classes, head.num_stuff_classes = NUM_THINGS, NUM_STUFF
    head.loss_cls.class_weight = [1.0] * (NUM_THINGS + NUM_STUFF) + [0.1]
    model.panoptic_fusion_head.num_things_classes = NUM_THINGS
    model.panoptic_fusion_head.num_stuff_classes = NUM_STUFF
    model.train_cfg.num_points = args.num_points
    if with_ibs:
        head.type = 'Mask2FormerIBSHead'
        head.loss_ibs = dict(
            type='IBSLoss',
            partner='pair',
            num_points=args.num_points,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            loss_weight=args.ibs_weight)
    return cfg


def build_model(args: argparse.Namespace, with_ibs: bool) -> torch.nn.Module:
    """Build one variant; the seed makes both variants' weights identical."""
    init_default_scope('mmdet')
    torch.manual_seed(args.seed)
    model = MODELS.build(model_cfg(args, with_ibs).model)
    model.init_weights()
    model.train()
    # mmengine's BaseModel.to also moves the data preprocessor, which casts each batch there
    return model.to(args.device)


def synthetic_batch(args: argparse.Namespace) -> dict:
    """A batch as the data loader gives it: ``--batch`` synthetic street scenes of ``--size``."""
    return packed_scenes(args.batch, *args.size, seed=args.seed)


def model_step_fn(args: argparse.Namespace, with_ibs: bool) -> Callable[[], None]:
    """One full training step (preprocess, forward, losses, backward, AdamW update)."""
    model = build_model(args, with_ibs)
    optim_wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4))
    data = synthetic_batch(args)

    def step() -> None:
        torch.manual_seed(args.seed)  # same matching/point draws in every step of both variants
        model.train_step(data, optim_wrapper)

    return step


# ------------------------------------------------------------------------------------------------
# IBS loss alone
def loss_inputs(args: argparse.Namespace) -> dict:
    """Query embeddings (B, Q, C), mask features (B, C, H/4, W/4) and which queries are matched
    things (``--things`` per image), as a Mask2Former decoder layer hands them to IBS."""
    gen = torch.Generator().manual_seed(args.seed)
    height, width = args.size[0] // 4, args.size[1] // 4
    embed = torch.randn(args.batch, args.queries, args.channels, generator=gen) * 0.1
    feats = torch.randn(args.batch, args.channels, height, width, generator=gen)
    is_thing = torch.zeros(args.batch, args.queries, dtype=torch.bool)
    for b in range(args.batch):
        is_thing[b, torch.randperm(args.queries, generator=gen)[:args.things]] = True
    # drawn on the CPU generator, so both devices get the same numbers
    embed, feats, is_thing = (t.to(args.device) for t in (embed, feats, is_thing))
    return dict(embed=embed.requires_grad_(), feats=feats.requires_grad_(), is_thing=is_thing)


def loss_step_fn(args: argparse.Namespace, variant: str,
                 num_points: Optional[int]) -> Callable[[], None]:
    """Forward and backward of one IBS evaluation (one decoder layer's worth)."""
    data = loss_inputs(args)
    ibs = MODELS.build(dict(type='IBSLoss', partner='pair', num_points=num_points))

    def step() -> None:
        torch.manual_seed(args.seed)
        embed, feats = data['embed'], data['feats']
        embed.grad = feats.grad = None
        if variant == 'naive':  # the release's: logits of all queries, then the matched things
            loss = naive_ibs(list(embed), feats, num_points, keep=list(data['is_thing']))
        else:
            loss = ibs([e[m] for e, m in zip(embed, data['is_thing'])], feats)
        loss.backward()

    return step


# ------------------------------------------------------------------------------------------------
# measuring
def synchronize(device: str) -> None:
    """Wait for the kernels queued on ``device`` (a no-op on the CPU, which runs eagerly)."""
    if device == 'cuda':
        torch.cuda.synchronize()


def timed(step: Callable[[], None], device: str) -> float:
    """Seconds of one step, including the GPU work it queued."""
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    return time.perf_counter() - start


def time_alternating(steps: Dict[str, Callable[[], None]],
                     warmup: int,
                     repeats: int,
                     device: str = 'cpu') -> Dict[str, List[float]]:
    """Seconds per step of each variant, run in ABBA rounds after ``warmup`` steps each."""
    names = list(steps)
    for w in range(warmup):
        for name in names:
            _progress(f'warm-up {w + 1}/{warmup} {name}: {timed(steps[name], device):.2f} s')
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(timed(steps[name], device))
            _progress(f'round {r + 1}/{repeats} {name}: {times[name][-1]:.2f} s')
    return times


def _progress(message: str) -> None:
    """One line per step on stderr: a step of the default setting takes about a minute on a CPU."""
    print(f'  [benchmark_ibs] {message}', file=sys.stderr, flush=True)


def reset_peak_cuda() -> float:
    """Reset the peak of CUDA memory allocated by tensors; return what is allocated now, MiB."""
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated() / 2**20


def child_memory(args: argparse.Namespace, spec: str) -> None:
    """In a fresh process: build one variant, run warm-up + 1 steps, print as JSON the memory in
    use before the steps and its peak during them (MiB): resident set size on the CPU, memory
    allocated by tensors on the GPU."""
    kind, variant, points = spec.split(':')
    if kind == 'model':
        step = model_step_fn(args, with_ibs=variant == MODEL_VARIANTS[1])
    else:
        step = loss_step_fn(args, variant, None if points == 'dense' else args.num_points)
    before = reset_peak_cuda() if args.device == 'cuda' else reset_peak_rss()
    for _ in range(args.warmup + 1):
        step()
    if args.device == 'cuda':
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = proc_status_mb('VmHWM')
    print(json.dumps(dict(before_mb=before, peak_mb=peak)))


def measure_memory(argv: Sequence[str], spec: str) -> dict:
    """Run :func:`child_memory` for ``spec`` in a fresh process; its memory in use and peak."""
    return run_child(__spec__.name, list(argv), spec)


def report(title: str, base: str, other: str, times: Dict[str, List[float]],
           memory: Optional[Dict[str, dict]], time_target: Optional[float],
           memory_target: Optional[float]) -> None:
    """Print one table and the overhead ratios of ``other`` over ``base``."""
    print(f'\n== {title} ==')
    header = f'{"variant":<18}{"median s":>10}{"mean s":>10}{"min s":>10}{"runs":>6}'
    if memory:
        header += f'{"peak MiB":>11}{"step MiB":>11}'
    print(header)
    for name, values in times.items():
        line = (f'{name:<18}{statistics.median(values):>10.3f}{statistics.mean(values):>10.3f}'
                f'{min(values):>10.3f}{len(values):>6}')
        if memory:
            mem = memory[name]
            line += f'{mem["peak_mb"]:>11.1f}{mem["peak_mb"] - mem["before_mb"]:>11.1f}'
        print(line)
    ratio = statistics.median(times[other]) / statistics.median(times[base])
    target = f' (target <= {time_target:.2f})' if time_target else ''
    print(f'time ratio {other} / {base} (medians): {ratio:.3f}{target}')
    if memory:
        peak = memory[other]['peak_mb'] / memory[base]['peak_mb']
        step_base = memory[base]['peak_mb'] - memory[base]['before_mb']
        step_other = memory[other]['peak_mb'] - memory[other]['before_mb']
        target = f' (target <= {memory_target:.2f})' if memory_target else ''
        print(f'peak memory ratio (whole process): {peak:.3f}{target}')
        print(f'peak memory ratio (step increment): {step_other / max(step_base, 1e-9):.3f}')


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    # keep mmengine's per-parameter init log out of the tables
    MMLogger.get_instance('benchmark_ibs', log_level='WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child_memory(args, args.child)
        return
    height, width = args.size
    if args.device == 'cuda':
        where = f'{torch.cuda.get_device_name()}, memory = torch.cuda.max_memory_allocated'
    else:
        where = f'CPU, {torch.get_num_threads()} threads, memory = peak resident set size'
    print(f'torch {torch.__version__}, {where}; batch {args.batch} x 3 x {height} x {width}, '
          f'{args.things} things per image, {args.num_points} points, warm-up {args.warmup}, '
          f'repeats {args.repeats}')
    if args.what in ('all', 'model'):
        steps = {
            name: model_step_fn(args, with_ibs=name == MODEL_VARIANTS[1])
            for name in MODEL_VARIANTS
        }
        times = time_alternating(steps, args.warmup, args.repeats, args.device)
        del steps
        memory = None if args.no_memory else {
            name: measure_memory(argv, f'model:{name}:-')
            for name in MODEL_VARIANTS
        }
        report(
            f'Mask2Former R{args.depth} training step, IBS pair / {args.num_points} points / '
            f'weight {args.ibs_weight}', *MODEL_VARIANTS, times, memory, 1.05, 1.10)
    if args.what in ('all', 'loss'):
        for points in (args.num_points, None):
            steps = {name: loss_step_fn(args, name, points) for name in LOSS_VARIANTS}
            times = time_alternating(steps, args.warmup, args.repeats, args.device)
            mode = 'dense' if points is None else 'point'
            memory = None if args.no_memory else {
                name: measure_memory(argv, f'loss:{name}:{mode}')
                for name in LOSS_VARIANTS
            }
            report(
                f'IBS loss alone, forward + backward, {mode} '
                f'({args.queries} queries, {args.things} things/image, C={args.channels}, '
                f'{height // 4}x{width // 4} features)', *LOSS_VARIANTS, times, memory, None, None)


if __name__ == '__main__':
    main()
