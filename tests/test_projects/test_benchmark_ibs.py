# Copyright (c) mmibs contributors. All rights reserved.
"""projects/toy_cityscapes/benchmarks/benchmark_ibs.py at toy sizes: its release-style naive IBS
equals IBSLoss, both variants of the model step build and run, and the tables and ratios come
out."""
import re

import pytest
import torch

from projects.toy_cityscapes.benchmarks import benchmark_ibs as tool

TOY = [
    '--size', '64', '128', '--queries', '8', '--channels', '16', '--things', '3', '--warmup', '0',
    '--repeats', '1', '--num-points', '16'
]


def test_naive_release_style_equals_ibs_loss_dense():
    args = tool.parse_args(TOY)
    data = tool.loss_inputs(args)
    assert data['is_thing'].sum(dim=1).tolist() == [3, 3]
    naive = tool.naive_ibs(list(data['embed']), data['feats'], keep=list(data['is_thing']))
    ours = tool.MODELS.build(dict(type='IBSLoss', partner='pair'))(
        [e[m] for e, m in zip(data['embed'], data['is_thing'])], data['feats'])
    torch.testing.assert_close(ours, naive, rtol=1e-5, atol=1e-7)


def test_model_step_and_loss_tables(capsys):
    tool.main(TOY + ['--depth', '18', '--no-memory', '--threads', '1'])
    out = capsys.readouterr().out
    assert re.search(r'mask2former\+ibs\s+\d+\.\d{3}', out)
    assert re.search(r'time ratio mask2former\+ibs / mask2former \(medians\): \d+\.\d{3}', out)
    assert out.count('time ratio IBSLoss / naive') == 2  # point-sampled and dense


def test_memory_subprocess_reports_a_peak():
    mem = tool.measure_memory(TOY + ['--threads', '1'], 'loss:IBSLoss:dense')
    assert mem['peak_mb'] >= mem['before_mb'] > 0


def test_device_defaults_to_cpu_and_cuda_without_cuda_is_a_clear_error(capsys, monkeypatch):
    assert tool.parse_args(TOY).device == 'cpu'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit) as exc:
        tool.parse_args(TOY + ['--device', 'cuda'])
    assert exc.value.code == 2
    assert '--device cuda: CUDA is not available' in capsys.readouterr().err


def test_cuda_timing_waits_for_the_queued_kernels(monkeypatch):
    """On a GPU a step only queues kernels: each timed step must synchronise before and after."""
    events = []
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda: events.append('sync'))
    steps = {'a': lambda: events.append('a'), 'b': lambda: events.append('b')}
    times = tool.time_alternating(steps, warmup=1, repeats=2, device='cuda')
    assert {k: len(v) for k, v in times.items()} == {'a': 2, 'b': 2}
    # warm-up a, b; round 1 a, b; round 2 b, a (ABBA), each between two synchronisations
    assert events == [e for step in 'ababba' for e in ('sync', step, 'sync')]
    events.clear()
    tool.time_alternating(steps, warmup=0, repeats=1, device='cpu')
    assert events == ['a', 'b']
