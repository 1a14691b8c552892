# Copyright (c) mmibs contributors. All rights reserved.
"""tools/demo.py (the README's main job, `make demo`) end to end at a few iterations: every step
(synthetic data, conversion, two trainings, two evaluations, table, figures) runs through the
real command-line tools, so a broken config or tool breaks this test before it breaks the demo."""
import glob
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_demo_runs_every_step_and_writes_table_and_figures(tmp_path):
    out = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, 'tools/demo.py', '--out', str(out), '--iters', '3', '--num-train', '4',
         '--num-val', '2'],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    # every model trained for the requested iterations and was evaluated
    for name in ('baseline', 'ibs', 'ibs+cropsamp'):
        assert osp.isfile(out / 'work_dirs' / name / 'iter_3.pth')
        assert glob.glob(str(out / 'test' / name / '*' / '*.json'))
    # the configs each run dumps into its log: IBS in the IBS models only, crop sampling only
    # where asked
    for name in ('ibs', 'ibs+cropsamp'):
        assert "type='IBSLoss'" in (out / f'train_{name}.log').read_text()
    assert 'loss_ibs=None' in (out / 'train_baseline.log').read_text()
    assert 'CropSamplingDataset' in (out / 'train_ibs+cropsamp.log').read_text()
    assert 'CropSamplingDataset' not in (out / 'train_ibs.log').read_text()

    # the comparison table: a header with the confusion metrics and one numeric row per model
    summary = (out / 'summary.md').read_text()
    assert '| model | PQ |' in summary and 'Acc_th' in summary and 'Prec_th' in summary
    rows = [line for line in summary.splitlines() if line.startswith(('| baseline', '| ibs'))]
    assert len(rows) == 3
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')][1:-1]
        values = [float(c) for c in cells]
        assert all(0.0 <= v <= 100.0 for v in values), row

    # the confusion figures of both kinds
    assert glob.glob(str(out / 'figures' / 'instances' / '*.png'))
    assert glob.glob(str(out / 'figures' / 'panoptic' / '*.png'))
