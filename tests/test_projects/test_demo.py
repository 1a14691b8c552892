# Copyright (c) mmibs contributors. All rights reserved.
"""projects/toy_cityscapes/demo.py (the README's main job, `make demo`) end to end at a few
iterations: every step (synthetic data, conversion, two trainings, two evaluations, table,
figures) runs through the real command-line tools, so a broken config or tool breaks this test
before it breaks the demo."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from projects.toy_cityscapes import demo

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_demo_runs_every_step_and_writes_table_and_figures(tmp_path):
    out = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, '-m', 'projects.toy_cityscapes.demo', '--out', str(out), '--iters', '3',
         '--num-train', '4', '--num-val', '2', '--models', 'baseline', 'ibs', 'cropsamp+ibs'],
        # the tools the demo starts import this checkout's mmibs, wherever mmibs is installed from
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    # every model trained for the requested iterations and was evaluated
    for name in ('baseline', 'ibs', 'cropsamp+ibs'):
        assert osp.isfile(out / 'work_dirs' / name / 'iter_3.pth')
        assert glob.glob(str(out / 'test' / name / '*' / '*.json'))
    # the configs each run dumps into its log: IBS in the IBS models only, crop sampling only
    # where asked
    for name in ('ibs', 'cropsamp+ibs'):
        assert "type='IBSLoss'" in (out / f'train_{name}.log').read_text()
    assert 'loss_ibs=None' in (out / 'train_baseline.log').read_text()
    assert 'CropSamplingDataset' in (out / 'train_cropsamp+ibs.log').read_text()
    assert 'CropSamplingDataset' not in (out / 'train_ibs.log').read_text()

    # the comparison table: a header with the confusion metrics and one numeric row per model
    summary = (out / 'summary.md').read_text()
    assert '| model | PQ |' in summary and 'Acc_th' in summary and 'Prec_th' in summary
    # the metrics table comes first; the comparison with the study (docs/results/ibs_study.json,
    # shipped) follows it and repeats the IBS model names
    metrics_table, found, comparison = summary.partition('Differences to the baseline')
    assert found, summary
    rows = [line for line in metrics_table.splitlines()
            if line.startswith(('| baseline', '| ibs', '| cropsamp'))]
    assert len(rows) == 3
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')][1:-1]
        values = [float(c) for c in cells]
        assert all(0.0 <= v <= 100.0 for v in values), row
    # 3 iterations and 2 images are not the study's settings, and the demo says so
    assert 'other settings than the study' in comparison
    diff_rows = [line for line in comparison.splitlines()
                 if line.startswith(('| ibs', '| cropsamp'))]
    assert [r.split('|')[1].strip() for r in diff_rows] == ['ibs', 'cropsamp+ibs']

    # the confusion figures of both kinds
    assert glob.glob(str(out / 'figures' / 'instances' / '*.png'))
    assert glob.glob(str(out / 'figures' / 'panoptic' / '*.png'))


def test_default_demo_is_the_baseline_and_the_released_recipe_at_the_study_settings():
    from projects.toy_cityscapes import ibs_study
    args = demo.parse_args([])
    study = ibs_study.parse_args([])
    assert args.models == ['baseline', 'cropsamp+ibs']
    assert args.iters == ibs_study.NETS['panoptic_fcn'].iters == 3000
    assert (args.num_train, args.num_val, args.height, args.width) == (
        study.num_train, study.num_val, study.height, study.width)
    # the configs say the same schedule as the demo's default
    from mmengine import Config
    for name in args.models:
        assert Config.fromfile(demo.DEMO_CONFIGS[name]).train_cfg.max_iters == args.iters


def test_study_comparison_marks_effects_beyond_the_seed_spread():
    args = demo.argparse.Namespace(iters=1200, num_train=24, num_val=30, height=256, width=512,
                                   seed=0)
    keys = demo.STUDY_KEYS

    def cell(diff, ci):
        return dict(diff=diff, ci95=ci)

    study = dict(
        iters=dict(panoptic_fcn=1200), seeds=[0, 1, 2], num_train=24, num_val=30,
        size=[256, 512], data_seed=0, cropsamp_scales=None,
        summary=dict(panoptic_fcn={
            'ibs': {k: cell(5.0, 2.0) for k in keys},  # interval excludes 0
            'cropsamp+ibs': {k: cell(-1.0, 3.0) for k in keys},  # includes 0
        }))
    results = {
        'baseline': {k: 50.0 for k in keys},
        'ibs': {k: 56.5 for k in keys},
        'cropsamp+ibs': {k: 48.0 for k in keys},
    }
    text = demo.format_study_comparison(results, study, args)
    rows = {line.split('|')[1].strip(): line for line in text.splitlines()
            if line.startswith(('| ibs', '| cropsamp'))}
    assert rows['ibs'].count('+6.5 ; +5.0 ± 2.0 *') == len(keys)
    assert rows['cropsamp+ibs'].count('-2.0 ; -1.0 ± 3.0 ~') == len(keys)
    assert "used the study's data, configs, iterations and seed 0" in text
    args.iters = 3
    assert 'guide only' in demo.format_study_comparison(results, study, args)
    # a study of one seed has no interval, so no mark either way
    one_seed = dict(study, seeds=[0], summary=dict(panoptic_fcn={
        'ibs': {k: cell(5.0, float('nan')) for k in keys}}))
    text = demo.format_study_comparison(results, one_seed, args)
    assert text.count('+6.5 ; +5.0 (1 seed)') == len(keys) and 'nan' not in text
