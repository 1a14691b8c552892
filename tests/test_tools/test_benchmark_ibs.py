# Copyright (c) mmibs contributors. All rights reserved.
"""tools/analysis_tools/benchmark_ibs.py at toy sizes: its release-style naive IBS equals IBSLoss,
both variants of the model step build and run, and the tables and ratios come out."""
import importlib.util
import os.path as osp
import re

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_ibs.py')
TOY = [
    '--size', '64', '128', '--queries', '8', '--channels', '16', '--things', '3', '--warmup', '0',
    '--repeats', '1', '--num-points', '16'
]


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_ibs', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_naive_release_style_equals_ibs_loss_dense():
    tool = load_tool()
    args = tool.parse_args(TOY)
    data = tool.loss_inputs(args)
    assert data['is_thing'].sum(dim=1).tolist() == [3, 3]
    naive = tool.naive_ibs(data['embed'], data['feats'], data['is_thing'], None)
    ours = tool.MODELS.build(dict(type='IBSLoss', partner='pair'))(
        [e[m] for e, m in zip(data['embed'], data['is_thing'])], data['feats'])
    torch.testing.assert_close(ours, naive, rtol=1e-5, atol=1e-7)


def test_model_step_and_loss_tables(capsys):
    tool = load_tool()
    tool.main(TOY + ['--depth', '18', '--no-memory', '--threads', '1'])
    out = capsys.readouterr().out
    assert re.search(r'mask2former\+ibs\s+\d+\.\d{3}', out)
    assert re.search(r'time ratio mask2former\+ibs / mask2former \(medians\): \d+\.\d{3}', out)
    assert out.count('time ratio IBSLoss / naive') == 2  # point-sampled and dense


def test_memory_subprocess_reports_a_peak():
    tool = load_tool()
    mem = tool.measure_memory(TOY + ['--threads', '1'], 'loss:IBSLoss:dense')
    assert mem['peak_mb'] >= mem['before_mb'] > 0
