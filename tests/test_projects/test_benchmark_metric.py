# Copyright (c) mmibs contributors. All rights reserved.
"""projects/toy_cityscapes/benchmarks/benchmark_metric.py: its sections run on tiny images and check
their numbers against the official evaluators; hotcoco is optional."""
import os.path as osp
import subprocess
import sys

from projects.toy_cityscapes.benchmarks import benchmark_metric as tool


def test_benchmark_metric_tool(tmp_path, capsys):
    """On tiny images: it checks the numbers itself."""
    report = tool.main([
        '--num-images', '2', '--height', '48', '--width', '96', '--num-things', '8', '--repeat',
        '1', '--skip-multi', '--work-dir',
        str(tmp_path)
    ])
    printed = capsys.readouterr().out
    assert set(report) == {'single', 'metric'}
    assert 'mmibs accumulate_panoptic_stats(nproc=1)' in report['single']
    assert 'mmibs PanopticQualityMetric' in report['metric']
    assert 'identical to 1e-9: checked' in printed and 'hotcoco' in printed


def test_benchmark_metric_all_cores_without_hotcoco(tmp_path, capsys):
    """The all-core section runs (and checks its numbers) when hotcoco is not wanted."""
    report = tool.main([
        '--num-images', '2', '--height', '32', '--width', '64', '--num-things', '6', '--repeat',
        '1', '--sections', 'multi', '--hotcoco', 'skip', '--work-dir',
        str(tmp_path)
    ])
    printed = capsys.readouterr().out
    assert 'hotcoco: skipped (--hotcoco skip)' in printed
    assert 'identical to 1e-9: checked' in printed and 'mmibs / hotcoco' not in printed
    assert any(name.startswith('mmibs evaluate_panoptic') for name in report['multi'])


def test_benchmark_metric_hotcoco_that_cannot_be_installed(tmp_path, monkeypatch):
    """No hotcoco and no way to install it: the column is skipped with the reason."""
    monkeypatch.setitem(sys.modules, 'hotcoco', None)  # import hotcoco raises ImportError
    monkeypatch.setitem(sys.modules, 'hotcoco.panoptic', None)
    monkeypatch.setattr(
        tool.subprocess, 'run',
        lambda command, **kwargs: subprocess.CompletedProcess(command, 1, '', 'no index here'))
    target = str(tmp_path / 'cache' / 'hotcoco')
    pq_compute, line = tool.import_hotcoco(target)
    assert pq_compute is None
    assert line.startswith('hotcoco: skipped, it could not be installed into') and target in line
    assert 'no index here' in line
    assert not osp.exists(target) and not list((tmp_path / 'cache').iterdir())  # nothing half-made
