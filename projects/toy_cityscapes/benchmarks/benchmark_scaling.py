# Copyright (c) mmibs contributors. All rights reserved.
"""Multi-process scaling of IBS training, and the IBS loss's peak memory as embeddings grow.

1. **Scaling.** For each process count in ``--procs`` (default 1 and 2) the script spawns that
   many CPU processes joined by a gloo process group, each training the demo's tiny Panoptic FCN
   with IBS (``configs/`` of this project: ResNet-18 with 16 base channels, 64-wide heads; IBS
   with the ``pair`` partner) wrapped in MMEngine's ``MMDistributedDataParallel`` on its own batch
   of ``--batch`` synthetic street scenes (same per-process batch size for every process count,
   i.e. weak scaling). After ``--warmup``
   iterations, ``--iters`` iterations are timed between two barriers; samples per second =
   processes x batch x iters / seconds. The scaling ratio is samples/s with the most processes
   over samples/s with one; ideal is the process count. Every process uses ``--threads`` torch
   threads (default 1), so 2 processes need 2 free cores to scale.
2. **Memory.** The IBS loss's forward + backward on a batch of 2 images with N thing embeddings
   each (``--embeddings``, default 10 100 1000), ``--channels`` channels and ``--mem-size``
   stride-4 mask features, once with ``IBSLoss`` (blocks of at most ``--max-chunk-elements``
   logits, its custom autograd function keeping no logits for backward) and once naively (plain
   autograd on the full (N, H, W) product, which keeps the logits and the focal intermediates).
   Each setting runs alone in a fresh subprocess; its peak resident set size (``common.py``)
   minus the RSS before the loss is the loss's working memory. Both
   implementations must give the same loss value (checked for every N, else the script fails).

Examples::

    python -m projects.toy_cityscapes.benchmarks.benchmark_scaling
    python -m projects.toy_cityscapes.benchmarks.benchmark_scaling --procs 1 2 --iters 10 \\
        --no-memory
    python -m projects.toy_cityscapes.benchmarks.benchmark_scaling --no-scaling \\
        --embeddings 10 100 1000 3000
"""
import argparse
import json
import os
import os.path as osp
import socket
import sys
import tempfile
import time
from typing import Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import mmibs  # noqa: F401  (registers mmibs modules)
from mmibs.models.losses import IBSLoss
from ..runs import CONFIG_DIR, REPO
from ..synthetic.packed import packed_scenes
from .common import naive_ibs, proc_status_mb, reset_peak_rss, run_child

#: The trained model: the demo's Panoptic FCN with IBS.
MODEL_CONFIG = osp.join(REPO, CONFIG_DIR,
                        'panoptic-fcn_r18-tiny_1xb4-3k_synthetic-cityscapes-crop-128x256-ibs.py')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='IBS multi-process scaling and loss memory.')
    parser.add_argument(
        '--procs',
        type=int,
        nargs='+',
        default=[1, 2],
        help='process counts to time (default: 1 2)')
    parser.add_argument(
        '--batch', type=int, default=2, help='images per process, even (default: 2)')
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[128, 256],
        help='training image H W (default: 128 256)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations (default: 2)')
    parser.add_argument('--iters', type=int, default=5, help='timed iterations (default: 5)')
    parser.add_argument(
        '--threads', type=int, default=1, help='torch threads per process (default: 1)')
    parser.add_argument(
        '--embeddings',
        type=int,
        nargs='+',
        default=[10, 100, 1000],
        help='thing embeddings per image of the memory runs (default: 10 100 1000)')
    parser.add_argument(
        '--mem-size',
        type=int,
        nargs=2,
        default=[128, 256],
        help='mask-feature H W of the memory runs (default: 128 256, the stride-4 '
        'features of a 512x1024 crop)')
    parser.add_argument(
        '--channels',
        type=int,
        default=256,
        help='embedding channels of the memory runs (default: 256)')
    parser.add_argument(
        '--max-chunk-elements',
        type=int,
        default=2**24,
        help='IBSLoss block size in logits (default: 2**24, its default)')
    parser.add_argument('--no-scaling', action='store_true', help='skip the scaling runs')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory runs')
    parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch < 2 or args.batch % 2:
        parser.error(f"--batch must be even and >= 2 (partner 'pair'), got {args.batch}")
    if min(args.procs) < 1:
        parser.error(f'--procs must be >= 1, got {args.procs}')
    return args


# ------------------------------------------------------------------------------------------------
# scaling
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _train_batch(args: argparse.Namespace, rank: int) -> dict:
    """``args.batch`` synthetic street scenes of ``args.size``, other scenes on every rank."""
    return packed_scenes(args.batch, *args.size, seed=rank)


def scaling_worker(rank: int, world_size: int, port: int, args: argparse.Namespace,
                   out_file: str) -> None:
    """One training process: DDP over gloo, warm-up, then the timed iterations.

    The process group is started here with the gloo backend and the model is wrapped without
    ``device_ids`` (what DDP needs for a CPU module), so no launcher or runner set-up is involved.
    """
    from mmengine.config import Config
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    from mmibs.registry import MODELS

    torch.set_num_threads(args.threads)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        init_default_scope('mmdet')
        torch.manual_seed(0)
        cfg = Config.fromfile(MODEL_CONFIG).model
        cfg.panoptic_head.loss_ibs.partner = 'pair'  # the batch holds pairs (2k, 2k + 1)
        model = MMDistributedDataParallel(module=MODELS.build(cfg))
        wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9))
        data = _train_batch(args, rank)
        for _ in range(args.warmup):
            model.train_step(data, wrapper)
        dist.barrier()
        start = time.perf_counter()
        for _ in range(args.iters):
            model.train_step(data, wrapper)
        dist.barrier()
        elapsed = time.perf_counter() - start
        if rank == 0:
            with open(out_file, 'w') as f:
                json.dump(dict(seconds=elapsed), f)
    finally:
        dist.destroy_process_group()


def samples_per_second(args: argparse.Namespace, world_size: int) -> float:
    """Spawn ``world_size`` processes and return the global training samples per second."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = osp.join(tmp, 'time.json')
        mp.spawn(scaling_worker, args=(world_size, _free_port(), args, out_file), nprocs=world_size)
        with open(out_file) as f:
            seconds = json.load(f)['seconds']
    return world_size * args.batch * args.iters / seconds


def run_scaling(args: argparse.Namespace) -> dict:
    """Samples/s per process count and the scaling ratio (most processes over one)."""
    rates = {}
    for world_size in args.procs:
        print(
            f'  [benchmark_scaling] training with {world_size} process(es) ...',
            file=sys.stderr,
            flush=True)
        rates[world_size] = samples_per_second(args, world_size)
    print(f'\nScaling (tiny Panoptic FCN + IBS, {args.batch} images of {args.size[0]}x'
          f'{args.size[1]} per process, gloo on CPU, {args.threads} thread(s) per process)')
    print(f'{"processes":>9}  {"samples/s":>10}  {"per process":>11}')
    for world_size, rate in rates.items():
        print(f'{world_size:>9}  {rate:>10.3f}  {rate / world_size:>11.3f}')
    result = dict(samples_per_second=rates)
    if len(rates) > 1:
        lo, hi = min(rates), max(rates)
        ratio = rates[hi] / rates[lo]
        print(f'scaling ratio {hi} / {lo} processes: {ratio:.3f} (ideal {hi / lo:.1f}, '
              f'efficiency {ratio / (hi / lo):.1%})')
        result['ratio'] = ratio
    return result


# ------------------------------------------------------------------------------------------------
# memory
def memory_child(args: argparse.Namespace, spec: str) -> None:
    """In a fresh process: one forward + backward of one variant; print the memory as JSON."""
    variant, num = spec.split(':')
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    height, width = args.mem_size
    features = (torch.randn(2, args.channels, height, width, generator=gen) * 0.1).requires_grad_()
    embeddings = [(torch.randn(int(num), args.channels, generator=gen) * 0.1).requires_grad_()
                  for _ in range(2)]
    loss_fn = IBSLoss(partner='pair', max_chunk_elements=args.max_chunk_elements)
    before = reset_peak_rss()
    start = time.perf_counter()
    loss = naive_ibs(embeddings, features) if variant == 'naive' else loss_fn(embeddings, features)
    loss.backward()
    seconds = time.perf_counter() - start
    peak = proc_status_mb('VmHWM')
    print(json.dumps(dict(loss=float(loss), before_mb=before, peak_mb=peak, seconds=seconds)))


def measure(argv: Sequence[str], spec: str) -> dict:
    """Run :func:`memory_child` for ``spec`` in a fresh one-thread process."""
    return run_child(__spec__.name, list(argv), spec, env=dict(OMP_NUM_THREADS='1'))


def run_memory(args: argparse.Namespace, argv: Sequence[str]) -> dict:
    """The memory table: working memory of IBSLoss and of the naive loss per embedding count."""
    height, width = args.mem_size
    rows = {}
    for num in args.embeddings:
        for variant in ('IBSLoss', 'naive'):
            print(
                f'  [benchmark_scaling] memory {variant}, {num} embeddings/image ...',
                file=sys.stderr,
                flush=True)
            rows[(num, variant)] = measure(argv, f'{variant}:{num}')
        a, b = rows[(num, 'IBSLoss')]['loss'], rows[(num, 'naive')]['loss']
        if abs(a - b) > 1e-4 * max(abs(b), 1e-12):
            raise RuntimeError(f'benchmark_scaling: IBSLoss {a} != naive {b} for N={num}')
    print(f'\nIBS loss forward+backward, 2 images, C={args.channels}, features {height}x{width}, '
          f'max_chunk_elements={args.max_chunk_elements} (peak RSS increase, MiB)')
    print(f'{"N/image":>8}  {"logits/image":>12}  {"IBSLoss MiB":>11}  {"naive MiB":>10}  '
          f'{"IBSLoss s":>9}  {"naive s":>8}')
    table = {}
    for num in args.embeddings:
        ours, naive = rows[(num, 'IBSLoss')], rows[(num, 'naive')]
        ours_mb = ours['peak_mb'] - ours['before_mb']
        naive_mb = naive['peak_mb'] - naive['before_mb']
        table[num] = dict(
            ibs_loss_mb=ours_mb,
            naive_mb=naive_mb,
            ibs_loss_s=ours['seconds'],
            naive_s=naive['seconds'])
        print(f'{num:>8}  {num * height * width:>12,}  {ours_mb:>11.1f}  {naive_mb:>10.1f}  '
              f'{ours["seconds"]:>9.2f}  {naive["seconds"]:>8.2f}')
    return table


def main(argv: Optional[Sequence[str]] = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.child is not None:
        memory_child(args, args.child)
        return {}
    results = {}
    if not args.no_scaling:
        results['scaling'] = run_scaling(args)
    if not args.no_memory:
        results['memory'] = run_memory(args, argv)
    return results


if __name__ == '__main__':
    main()
