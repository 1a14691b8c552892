# Copyright (c) mmibs contributors. All rights reserved.
"""projects/toy_cityscapes/ibs_study.py end to end at 2 iterations on tiny data: the tiny
Mask2Former's baseline and released recipe (crop sampling + IBS: pairs, pair partner) x 2 seeds (so
the spread and the paired t-intervals are computed; the other two models only differ in their
config, which tests/test_configs builds) write the
table, the json with every model and metric, the plot and the confusion figures; started again,
the study reuses the finished runs instead of retraining them. (The Panoptic FCN demo configs are
trained end to end by tests/test_projects/test_demo.py; the study drives both the same way.)"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from projects.toy_cityscapes import ibs_study, runs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

MODELS = ('baseline', 'cropsamp+ibs')


def run_study(out):
    cmd = [
        sys.executable, '-m', 'projects.toy_cityscapes.ibs_study', '--out', out, '--nets',
        'mask2former', '--models', *MODELS, '--seeds', '0', '1', '--iters', '2', '--num-train',
        '4', '--num-val', '2', '--height', '128', '--width', '256', '--fig-images', '1', '--jobs',
        '2', '--val-interval', '1'
    ]
    # the tools the study starts import this checkout's mmibs, wherever mmibs is installed from
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_study_end_to_end_and_resumable(tmp_path):
    out = str(tmp_path / 'study')
    first = run_study(out)
    assert '[study] 4 runs' in first and 'training + testing' in first
    for name in ('study.md', 'study.json', 'study.png'):
        assert osp.getsize(osp.join(out, name)) > 0, name
    with open(osp.join(out, 'study.json')) as f:
        study = json.load(f)
    summary = study['summary']['mask2former']
    assert set(summary) == set(MODELS)
    for model, entry in summary.items():
        assert set(entry) == set(ibs_study.METRICS), model
        for key, cell in entry.items():
            assert cell['n'] == 2 and len(cell['values']) == 2, (model, key)
    # paired with itself, the baseline's difference is exactly zero
    assert summary['baseline']['PQ']['diff'] == 0.0
    assert len(study['runs']) == 4
    # --val-interval 1: every run validated at iterations 1 and 2, the last equal to the final
    # evaluation of the same weights by tools/test.py
    for run in study['runs']:
        assert [p['iter'] for p in run['curve']] == [1, 2]
        assert run['curve'][-1]['PQ'] == pytest.approx(run['metrics']['PQ'])
    with open(osp.join(out, 'curves.json')) as f:
        curves = json.load(f)['mask2former']
    assert curves['baseline']['iters'] == [1, 2] and curves['baseline']['PQ_th']['n'] == 2
    assert osp.getsize(osp.join(out, 'curves.png')) > 0
    assert '| baseline (2) |' in open(osp.join(out, 'curves.md')).read()
    figures = osp.join(out, 'figures', 'mask2former')
    assert any(f.endswith('.png') for _, _, files in os.walk(figures) for f in files)
    checkpoint = osp.join(ibs_study.run_dir(out, 'mask2former', 'cropsamp+ibs', 1), 'train',
                          'iter_2.pth')
    mtime = osp.getmtime(checkpoint)

    second = run_study(out)
    assert 'training + testing' not in second
    assert second.count('checking finished run') == 4
    assert osp.getmtime(checkpoint) == mtime  # not retrained
    with open(osp.join(out, 'study.json')) as f:
        assert json.load(f)['summary'] == study['summary']


def test_threads_per_job(monkeypatch):
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(runs, 'cpu_cores', lambda: 8)  # shared by the demo and the study
    assert runs.threads_per_job(1) is None  # one run: torch's own default
    assert runs.threads_per_job(2) == 4
    assert runs.threads_per_job(16) == 1
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    assert runs.threads_per_job(2) is None  # the user's setting is inherited


@pytest.mark.parametrize('model', ['baseline', 'ibs', 'cropsamp', 'cropsamp+ibs'])
def test_overrides_reach_the_models_they_concern(tmp_path, monkeypatch, model):
    calls = []
    monkeypatch.setattr(runs, 'run_tool', lambda cmd, *args, **kwargs: calls.append(cmd))
    monkeypatch.setattr(runs, 'read_metrics', lambda test_dir, tag: {'PQ': 1.0})
    ibs_study.study_run('mask2former', model, 3, 7, str(tmp_path / 'data') + '/', str(tmp_path),
                        cropsamp_scales=[32, 64], threads=1, ibs_weight=5.0, ibs_partner='random')
    train = ' '.join(calls[0])
    assert 'tools/train.py' in train and 'randomness.seed=3' in train
    assert 'train_cfg.max_iters=7' in train and 'param_scheduler.end=8' in train
    assert ('model.panoptic_head.loss_ibs.loss_weight=5.0' in train) == model.endswith('ibs')
    assert ('train_dataloader.dataset.scales=[32,64]' in train) == model.startswith('cropsamp')
    assert ('model.panoptic_head.loss_ibs.partner=random' in train) == model.endswith('ibs')
    assert 'tools/test.py' in ' '.join(calls[1])


def test_plan_runs_the_main_comparison_first_and_middle_models_on_fewer_seeds(capsys):
    args = ibs_study.parse_args(['--seeds', '0', '1', '2', '--middle-seeds', '0'])
    plan = ibs_study.study_plan(['panoptic_fcn'], list(ibs_study.MODELS), args.seeds,
                                args.middle_seeds)
    assert plan[:6] == [('panoptic_fcn', m, s) for s in (0, 1, 2)
                        for m in ('baseline', 'cropsamp+ibs')]
    assert plan[6:] == [('panoptic_fcn', 'ibs', 0), ('panoptic_fcn', 'cropsamp', 0)]
    assert ibs_study.parse_args([]).middle_seeds == [0, 1, 2]
    with pytest.raises(SystemExit):
        ibs_study.parse_args(['--seeds', '0', '1', '--middle-seeds', '5'])
    assert 'must be distinct seeds of --seeds' in capsys.readouterr().err


def test_curves_summary_at_the_shared_iterations():
    def run(model, seed, values):
        return dict(net='n', model=model, seed=seed, curve=[
            dict(iter=i, PQ=v, PQ_th=v + 1, PQ_st=v - 1) for i, v in values])

    curves = ibs_study.summarise_curves([
        run('baseline', 0, [(500, 10.0), (1000, 20.0)]),
        run('baseline', 1, [(500, 14.0), (1000, 30.0), (1500, 40.0)]),
        dict(net='n', model='ibs', seed=0, curve=[]),  # validated only at the end: no curve
    ])
    entry = curves['n']['baseline']
    assert list(curves['n']) == ['baseline'] and entry['iters'] == [500, 1000]
    assert entry['PQ_th'] == dict(mean=[13.0, 26.0], min=[11.0, 21.0], max=[15.0, 31.0], n=2)
    assert '| baseline (2) | 13.0 [11.0, 15.0] | 26.0 [21.0, 31.0] |' in ibs_study.format_curves(
        curves)


def test_iters_for_every_net_or_one(capsys):
    nets = ['panoptic_fcn', 'solov2', 'condinst']
    default = {n: ibs_study.NETS[n].iters for n in nets}

    def iters(*values):
        return ibs_study.parse_args(['--nets', *nets, '--iters', *values] if values else
                                    ['--nets', *nets]).iters

    assert iters() == default
    assert iters('100') == dict.fromkeys(nets, 100)
    assert iters('solov2=1500', 'condinst=700') == {**default, 'solov2': 1500, 'condinst': 700}
    for bad, message in [(('mask2former=5', ), "'mask2former' is not one of --nets"),
                         (('solov2=0', ), 'expected N or NET=N with N >= 1'),
                         (('solov2=x', ), 'expected N or NET=N'),
                         (('100', 'solov2=5'), 'solov2 already given')]:
        with pytest.raises(SystemExit):
            iters(*bad)
        assert message in capsys.readouterr().err


def test_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        ibs_study.parse_args(['--jobs', '0'])
    assert '--jobs must be >= 1' in capsys.readouterr().err


def test_summary_statistics():
    runs = [
        dict(net='n', model=m, seed=s, metrics={k: v + (s if m == 'ibs' else 0)
                                                for k in ibs_study.METRICS})
        for m, v in (('baseline', 50.0), ('ibs', 52.0)) for s in (0, 1, 2)
    ]
    summary = ibs_study.summarise(runs, ['n'], ['baseline', 'ibs'])
    cell = summary['n']['ibs']['PQ']
    assert cell['mean'] == 53.0 and abs(cell['std'] - 1.0) < 1e-12
    # differences 2, 3, 4: mean 3, sd 1, t(0.975, 2) = 4.3027 -> half-width 4.3027 / sqrt(3)
    assert cell['diff'] == 3.0 and abs(cell['ci95'] - 4.302653 / 3**0.5) < 1e-5


def test_one_seed_table_has_no_spread():
    """One seed has no standard deviation or interval: the table shows the value alone, not
    '± nan'."""
    runs = [dict(net='n', model=m, seed=0, metrics={k: v for k in ibs_study.METRICS})
            for m, v in (('baseline', 50.0), ('ibs', 52.5))]
    summary = ibs_study.summarise(runs, ['n'], ['baseline', 'ibs'])
    args = ibs_study.parse_args([])
    text = ibs_study.format_markdown(summary, {'n': 10}, [0], args)
    assert 'nan' not in text
    row = next(line for line in text.splitlines() if line.startswith('| n | ibs'))
    assert row.count('| 52.5 ') == len(ibs_study.METRICS)
    assert row.count('| +2.5 ') == len(ibs_study.METRICS)
    # with several seeds the spread stays
    assert ibs_study.plus_minus(3.0, 1.25, '+.1f') == '+3.0 ± 1.2'


@pytest.mark.parametrize('net', ['solov2', 'condinst'])
def test_instance_nets_use_their_mask_head_and_the_instance_metric(tmp_path, monkeypatch, net):
    """SOLOv2 and CondInst: the IBS overrides go to ``model.mask_head``, the evaluation to the raw
    gtFine of the synthetic set (CityScapesMetric), the metrics read are the instance AP."""
    calls, tasks = [], []
    monkeypatch.setattr(runs, 'run_tool', lambda cmd, *args, **kwargs: calls.append(cmd))

    def read_metrics(test_dir, tag, task='panoptic'):
        tasks.append(task)
        return {'mAP': 12.5, 'AP@50': 30.0}

    monkeypatch.setattr(runs, 'read_metrics', read_metrics)
    data_root = str(tmp_path / 'data') + '/'
    result = ibs_study.study_run(net, 'cropsamp+ibs', 3, 7, data_root, str(tmp_path), threads=1,
                                 ibs_weight=2.0, ibs_partner='all')
    train, test = (' '.join(c) for c in calls)
    assert f'{net}_r18-tiny_1xb4-3k_synthetic-cityscapes-cropsamp-128x256-ibs.py' in train
    assert 'model.mask_head.loss_ibs.loss_weight=2.0' in train
    assert 'model.mask_head.loss_ibs.partner=all' in train and 'panoptic_head' not in train
    assert 'param_scheduler.1.end=8' in train
    for cmd in (train, test):
        assert f'test_evaluator.seg_prefix={data_root}gtFine/val' in cmd
        assert 'ann_file=' not in cmd.replace('train_dataloader', '')
    assert tasks == ['instance'] and result['metrics'] == {'mAP': 12.5, 'AP@50': 30.0}
    assert ibs_study.net_metrics(net) == ('mAP', 'AP@50')


def test_instance_metrics_are_read_in_percent(tmp_path):
    """mmdet's CityScapesMetric logs fractions; the study reports percent, as PQ."""
    run_dir = tmp_path / 'test' / '20261207_000000'
    run_dir.mkdir(parents=True)
    (run_dir / '20261207_000000.json').write_text(
        json.dumps({'cityscapes/mAP': 0.25, 'cityscapes/AP@50': 0.5, 'time': 1.0}))
    assert runs.read_metrics(str(tmp_path / 'test'), '[t]', 'instance') == {
        'mAP': 25.0, 'AP@50': 50.0}
    assert runs.read_metrics(str(tmp_path / 'test'), '[t]') == {}  # no panoptic key


def test_summary_and_table_of_mixed_tasks():
    """Panoptic and instance nets in one study: each summarised and tabulated with its metrics."""
    results = [
        dict(net=n, model=m, seed=s,
             metrics={k: 40.0 + s + (1.0 if m == 'ibs' else 0.0) for k in ibs_study.net_metrics(n)})
        for n in ('panoptic_fcn', 'solov2') for m in ('baseline', 'ibs') for s in (0, 1)
    ]
    summary = ibs_study.summarise(results, ['panoptic_fcn', 'solov2'], ['baseline', 'ibs'])
    assert set(summary['panoptic_fcn']['ibs']) == set(ibs_study.METRICS)
    assert set(summary['solov2']['ibs']) == {'mAP', 'AP@50'}
    assert summary['solov2']['ibs']['mAP']['diff'] == 1.0
    args = ibs_study.parse_args(['--nets', 'panoptic_fcn', 'solov2', '--seeds', '0', '1'])
    table = ibs_study.format_markdown(summary, {'panoptic_fcn': 2, 'solov2': 2}, [0, 1], args)
    assert '| net | model | PQ | PQ_th |' in table and '| net | model | mAP | AP@50 |' in table
    assert '| solov2 | ibs | 41.5 ± 0.7 | 41.5 ± 0.7 | +1.0 ± 0.0 | +1.0 ± 0.0 |' in table


@pytest.mark.parametrize('net', list(ibs_study.NETS))
def test_each_net_spec_matches_its_configs(net):
    """What the study assumes of a network (schedule, scheduler entry, IBS head, model variants)
    is what its four configs say, so an override the study writes reaches the right key."""
    from mmengine import Config
    spec = ibs_study.NETS[net]
    for model, path in spec.configs.items():
        cfg = Config.fromfile(path)
        assert cfg.train_cfg.max_iters == spec.iters, (net, model)
        # the poly entry's end is one past the last iteration, as schedule_options() writes it
        node = cfg
        for part in spec.poly_key.split('.')[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        assert node['end'] == spec.iters + 1, (net, model)
        head = cfg.model[spec.ibs_head]
        assert bool(head.get('loss_ibs')) == model.endswith('ibs'), (net, model)
        crop_sampling = cfg.train_dataloader.dataset.type == 'CropSamplingDataset'
        assert crop_sampling == model.startswith('cropsamp'), (net, model)
    assert ibs_study.task_of(net) in ibs_study.TASK_METRICS
