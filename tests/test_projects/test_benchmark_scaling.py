# Copyright (c) mmibs contributors. All rights reserved.
"""projects/toy_cityscapes/benchmarks/benchmark_scaling.py at toy sizes: the benchmarks' naive IBS
equals IBSLoss, one run prints samples/s for 1 and 2 gloo processes and the scaling ratio, and the
memory measurement reports a peak. The rates themselves are not asserted (they depend on the
machine's load)."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import torch

from projects.toy_cityscapes.benchmarks import benchmark_scaling as tool
from projects.toy_cityscapes.benchmarks.common import naive_ibs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_naive_equals_ibs_loss_values_and_gradients():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 8, 5, 6, generator=gen).requires_grad_()
    embs = [torch.randn(n, 8, generator=gen).requires_grad_() for n in (3, 4)]
    naive = naive_ibs(embs, feats)
    naive.backward()
    grads = [feats.grad.clone()] + [e.grad.clone() for e in embs]
    feats.grad = None
    for e in embs:
        e.grad = None
    # blocks of one embedding: the chunked path is exercised
    ours = tool.IBSLoss(partner='pair', max_chunk_elements=30)(embs, feats)
    ours.backward()
    torch.testing.assert_close(ours, naive, rtol=1e-5, atol=1e-7)
    for got, ref in zip([feats.grad] + [e.grad for e in embs], grads):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)


def test_scaling_and_memory_tables():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    cmd = [
        sys.executable, '-m', 'projects.toy_cityscapes.benchmarks.benchmark_scaling', '--procs',
        '1', '2', '--size', '64', '128', '--warmup', '0', '--iters', '1', '--no-memory'
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    out = proc.stdout
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    rates = {
        int(p): float(r)
        for p, r in re.findall(r'^\s+([12])\s+(\d+\.\d{3})\s+\d+\.\d{3}$', out, re.M)
    }
    assert set(rates) == {1, 2} and all(r > 0 for r in rates.values()), out
    ratio = float(re.search(r'scaling ratio 2 / 1 processes: (\d+\.\d{3})', out).group(1))
    assert abs(ratio - rates[2] / rates[1]) < 2e-3 * ratio + 1e-3, out


def test_memory_child_reports_peak_and_equal_losses(capsys):
    args = tool.parse_args(['--mem-size', '16', '32', '--channels', '16'])
    results = {}
    for variant in ('IBSLoss', 'naive'):
        tool.memory_child(args, f'{variant}:10')
        results[variant] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert results[variant]['peak_mb'] >= results[variant]['before_mb'] > 0
    assert abs(results['IBSLoss']['loss'] - results['naive']['loss']) < 1e-6
