# Copyright (c) mmibs contributors. All rights reserved.
"""projects/toy_cityscapes/ibs_loss_ratio.py end to end at 4 iterations on tiny data: both tiny
networks' released recipe (crop sampling + IBS) are trained through tools/train.py, and the
printed and written ratios and the implied Mask2Former weight are recomputed here from the
``scalars.json`` mmengine wrote for each run and from the configs' IBS weights. Run again with
another Mask2Former weight in the same folder, only Mask2Former is retrained."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

from projects.toy_cityscapes import ibs_loss_ratio, ibs_study

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ITERS = 4
TAIL = 0.5  # the last 2 of 4 iterations


def run_tool(out, *extra):
    cmd = [
        sys.executable, '-m', 'projects.toy_cityscapes.ibs_loss_ratio', '--out', out, '--iters',
        str(ITERS), '--tail', str(TAIL), '--num-train', '4', '--num-val', '2', '--height', '128',
        '--width', '256', '--jobs', '2', *extra
    ]
    # the tools it starts import this checkout's mmibs, wherever mmibs is installed from
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def config_weight(net):
    cfg = Config.fromfile(osp.join(REPO, ibs_study.NETS[net].configs['cropsamp+ibs']))
    return cfg.model.panoptic_head.loss_ibs.loss_weight


def losses_from_scalars(run_folder):
    """Per-iteration (IBS, other) read straight from the run's scalars.json."""
    files = glob.glob(osp.join(run_folder, 'train', '*', 'vis_data', 'scalars.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        entries = [json.loads(line) for line in f]
    assert [e['step'] for e in entries] == list(range(1, ITERS + 1))
    ibs, other = [], []
    for e in entries:
        terms = {k: v for k, v in e.items() if 'loss' in k and k != 'loss'}
        ibs.append(sum(v for k, v in terms.items() if 'loss_ibs' in k))
        other.append(sum(v for k, v in terms.items() if 'loss_ibs' not in k))
        assert ibs[-1] > 0 and abs(ibs[-1] + other[-1] - e['loss']) < 1e-3 * e['loss']
    return ibs, other


def check_summary(out, stdout, m2f_weight):
    with open(osp.join(out, 'ibs_loss_ratio.json')) as f:
        result = json.load(f)
    entry = result['summary']['cropsamp+ibs']['per_seed']['0']
    weights = {'panoptic_fcn': config_weight('panoptic_fcn'), 'mask2former': m2f_weight}
    ratios = {}
    for net, weight in weights.items():
        folder = ibs_loss_ratio.weight_run_dir(out, net, 'cropsamp+ibs', 0, weight)
        ibs, other = losses_from_scalars(folder)
        run = next(r for r in result['runs'] if r['net'] == net)
        # the json keeps the averaged iterations: the last 2
        assert run['tail_steps'] == [ITERS - 1, ITERS]
        assert run['ibs'] == pytest.approx(ibs[-2:], rel=1e-9)
        assert run['other'] == pytest.approx(other[-2:], rel=1e-9)
        mean_ibs, mean_other = np.mean(ibs[-2:]), np.mean(other[-2:])
        ratios[net] = mean_ibs / mean_other
        cell = entry[net]
        assert cell['tail_iters'] == 2 and cell['weight'] == weight
        assert cell['ibs'] == pytest.approx(mean_ibs, rel=1e-9)
        assert cell['other'] == pytest.approx(mean_other, rel=1e-9)
        assert cell['ratio'] == pytest.approx(ratios[net], rel=1e-9)
        assert cell['raw_ibs'] == pytest.approx(mean_ibs / weight, rel=1e-9)
        assert f'ratio {ratios[net]:.4g}' in stdout  # the progress line of the run
        assert f'| {net} | 0 | {weight:g} | {mean_ibs:.4g} | {mean_other:.4g} | ' \
               f'{ratios[net]:.4g} | {mean_ibs / weight:.4g} |' in stdout
    implied = m2f_weight * ratios['panoptic_fcn'] / ratios['mask2former']
    assert entry['implied_weight'] == pytest.approx(implied, rel=1e-9)
    assert f'= **{implied:.3g}**' in stdout
    assert 'first-order estimate' in stdout
    with open(osp.join(out, 'ibs_loss_ratio.md')) as f:
        assert f'= **{implied:.3g}**' in f.read()


@pytest.mark.slow
def test_ratio_end_to_end_recomputed_from_scalars(tmp_path):
    out = str(tmp_path / 'ratio')
    first = run_tool(out)
    assert '[ibs-ratio] 2 runs' in first and '2 to train' in first
    assert first.count(': training 4 iterations') == 2
    check_summary(out, first, config_weight('mask2former'))

    # another Mask2Former weight: Panoptic FCN's run is reused, Mask2Former's trained again
    second = run_tool(out, '--weight', 'mask2former=2')
    assert '1 to train' in second and second.count('checking finished run') == 1
    assert 'mask2former cropsamp+ibs seed 0: training 4 iterations, IBS weight 2 ' in second
    check_summary(out, second, 2.0)
    train_log = osp.join(
        ibs_loss_ratio.weight_run_dir(out, 'mask2former', 'cropsamp+ibs', 0, 2.0), 'train.log')
    with open(train_log) as f:
        assert 'loss_weight=2.0' in f.read()  # the config the run dumped


def test_losses_split_and_averaged():
    entries = [
        dict(step=i + 1, loss=10.0 + i, loss_cls=6.0, loss_mask=3.0 + i, loss_ibs=0.5,
             **{'d1.loss_ibs': 0.5}, lr=0.1) for i in range(4)
    ]
    losses = ibs_loss_ratio.split_losses(entries, 'synthetic')
    assert losses['ibs_keys'] == ['d1.loss_ibs', 'loss_ibs']
    assert losses['ibs'] == [1.0] * 4 and losses['other'] == [9.0, 10.0, 11.0, 12.0]
    summary = ibs_loss_ratio.summarise_run(losses, weight=5.0, tail=0.25)
    assert summary['tail_iters'] == 1 and summary['ratio'] == 1.0 / 12.0
    assert summary['raw_ibs'] == 0.2 and summary['parts']['loss_mask'] == 6.0
    assert ibs_loss_ratio.implied_weight(50.0, 0.1, 0.4) == 12.5


def test_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match='no loss_ibs'):
        ibs_loss_ratio.split_losses([dict(step=1, loss=1.0, loss_cls=1.0)], 'baseline')
    with pytest.raises(SystemExit, match='sum to'):
        ibs_loss_ratio.split_losses([dict(step=1, loss=5.0, loss_cls=1.0, loss_ibs=1.0)], 'x')
    with pytest.raises(SystemExit, match='no .*scalars.json'):
        ibs_loss_ratio.read_scalars(str(tmp_path), 3)
    vis = tmp_path / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    # logged every 2 iterations: not the per-iteration losses the tool needs
    (vis / 'scalars.json').write_text(''.join(
        json.dumps(dict(step=s, loss=1.0)) + '\n' for s in (2, 4)))
    with pytest.raises(SystemExit, match='every iteration'):
        ibs_loss_ratio.read_scalars(str(tmp_path), 4)


@pytest.mark.parametrize('argv, message', [(['--tail', '0'], '--tail must be in'),
                                           (['--jobs', '0'], '--jobs must be >= 1'),
                                           (['--mask2former-weight', '0'], 'must be > 0'),
                                           (['--seeds', '1', '1'], 'duplicates'),
                                           (['--weight', 'solov2=1'], "'solov2' is not one of"),
                                           (['--weight', 'mask2former=-1'], 'with W > 0'),
                                           (['--weight', 'mask2former'], 'with W > 0'),
                                           (['--weight', 'mask2former=2', 'mask2former=3'],
                                            'mask2former already given'),
                                           (['--weight', 'mask2former=2',
                                             '--mask2former-weight', '3'], 'give one'),
                                           (['--nets', 'solov2', '--mask2former-weight', '3'],
                                            'is not one of --nets'),
                                           (['--iters', '0'], 'expected N or NET=N'),
                                           (['--iters', 'solov2=100'], "'solov2' is not one of"),
                                           (['--iters', '100', 'mask2former=5'],
                                            'mask2former already given')])
def test_bad_options(capsys, argv, message):
    with pytest.raises(SystemExit):
        ibs_loss_ratio.parse_args(argv)
    assert message in capsys.readouterr().err


def test_weights_per_net():
    args = ibs_loss_ratio.parse_args(['--nets', 'mask2former', 'solov2', 'condinst', '--weight',
                                      'solov2=1.3', 'condinst=1.7'])
    assert args.weights == dict(solov2=1.3, condinst=1.7)
    assert ibs_loss_ratio.parse_args(['--mask2former-weight', '22']).weights == dict(
        mask2former=22.0)
    assert ibs_loss_ratio.parse_args([]).weights == {}


def test_iters_for_every_run_or_per_net():
    """One N trains every run N iterations; NET=N sets one network's (the first study's
    schedules were Panoptic FCN 1,200 and Mask2Former 500); the others keep the study's."""
    study = {n: ibs_study.NETS[n].iters for n in ('panoptic_fcn', 'mask2former')}
    assert ibs_loss_ratio.parse_args([]).iters == study
    assert ibs_loss_ratio.parse_args(['--iters', '500']).iters == dict(panoptic_fcn=500,
                                                                      mask2former=500)
    assert ibs_loss_ratio.parse_args(['--iters', 'panoptic_fcn=1200', 'mask2former=500'
                                      ]).iters == dict(panoptic_fcn=1200, mask2former=500)
    assert ibs_loss_ratio.parse_args(['--nets', 'solov2', '--iters', 'solov2=700']).iters == dict(
        panoptic_fcn=study['panoptic_fcn'], solov2=700)


def test_every_measured_net_gets_its_implied_weight():
    """--nets mask2former solov2 condinst: each network's weight from Panoptic FCN's ratio, by
    seed and from the mean ratios, in the json summary and the markdown."""
    def run(net, seed, weight, ibs, other):
        return dict(net=net, model='cropsamp+ibs', seed=seed, weight=weight, ibs=[ibs] * 4,
                    other=[other] * 4, parts={})

    nets = ['mask2former', 'solov2', 'condinst']
    runs = [
        run('panoptic_fcn', s, 4.0, 0.1 * (s + 1), 2.0) for s in (0, 1)
    ] + [run('mask2former', s, 50.0, 1.0, 10.0) for s in (0, 1)] + [
        run('solov2', s, 3.0, 0.2, 4.0 * (s + 1)) for s in (0, 1)
    ] + [run('condinst', s, 1.0, 0.01, 1.0) for s in (0, 1)]
    summary = ibs_loss_ratio.summarise(runs, ['cropsamp+ibs'], [0, 1], 0.25, nets)
    seed1 = summary['cropsamp+ibs']['per_seed']['1']
    # Panoptic FCN's ratio at seed 1: 0.2 / 2 = 0.1
    assert seed1['implied_weights']['solov2'] == pytest.approx(3.0 * 0.1 / (0.2 / 8.0))
    assert seed1['implied_weights']['condinst'] == pytest.approx(1.0 * 0.1 / 0.01)
    assert seed1['implied_weight'] == seed1['implied_weights']['mask2former'] == pytest.approx(
        50.0 * 0.1 / 0.1)
    mean = summary['cropsamp+ibs']['mean']
    # mean ratios: Panoptic FCN (0.05 + 0.1) / 2, SOLOv2 (0.05 + 0.025) / 2
    assert mean['implied_weights']['solov2'] == pytest.approx(3.0 * 0.075 / 0.0375)
    args = ibs_loss_ratio.parse_args(['--nets', *nets, '--seeds', '0', '1'])
    table = ibs_loss_ratio.format_markdown(summary, {n: 4 for n in nets}, args)
    assert '- implied SOLOv2 weight (mean ratios): 3 x 0.075 / 0.0375 = **6**' in table
    assert '- implied CondInst weight (seed 1): 1 x 0.1 / 0.01 = **10**' in table
    assert '| solov2 | 1 | 3 | 0.2 | 8 | 0.025 | 0.06667 |' in table


def fake_study_run(study, net, seed, weight, iters=8, interval=2, window=2, ibs=None,
                   finished=True):
    """A finished study run as ibs_study.py leaves it: the dumped config and mmengine's
    scalars.json with one entry per ``interval`` iterations (plus the early entry mmengine logs,
    and a validation entry), each loss the mean of its window."""
    wd = ibs_study.run_dir(str(study), net, 'cropsamp+ibs', seed)
    vis = osp.join(wd, 'train', '20261207_000000', 'vis_data')
    os.makedirs(vis)
    with open(osp.join(wd, 'train', f'{net}_tiny.py'), 'w') as f:
        f.write(f'model = dict(panoptic_head=dict(loss_ibs=dict(loss_weight={weight})))\n'
                f'train_cfg = dict(max_iters={iters})\n'
                f'default_hooks = dict(logger=dict(interval={interval}))\n'
                f'log_processor = dict(window_size={window})\n')
    ibs = ibs or [0.1 * weight * (k + 1) for k in range(iters // interval)]
    lines = [dict(step=1, loss=99.0, loss_cls=98.0, loss_ibs=1.0)]  # not a whole window
    for k, step in enumerate(range(interval, iters + 1, interval)):
        other = 2.0 + seed + k
        lines.append(dict(step=step, loss=ibs[k] + other, loss_cls=other / 2,
                          loss_mask=other / 2, loss_ibs=ibs[k], lr=0.1))
        if step == iters // 2:
            lines.append({'panoptic/PQ': 50.0, 'step': step})
    with open(osp.join(vis, 'scalars.json'), 'w') as f:
        f.write(''.join(json.dumps(e) + '\n' for e in lines))
    if finished:
        with open(osp.join(wd, 'metrics.json'), 'w') as f:
            json.dump({}, f)
    return ibs


def test_from_study_reads_the_logged_windows(tmp_path, capsys):
    """--from-study: the runs ibs_study.py trained, read from their 2-iteration windows; the last
    half of 8 iterations is the last 2 windows; weights and schedule come from the dumped
    configs, the data fields from the study's spec.json; nothing is trained."""
    study = tmp_path / 'study'
    expected = {}
    for seed in (0, 1):
        for net, weight in (('panoptic_fcn', 4.0), ('mask2former', 20.0)):
            ibs = fake_study_run(study, net, seed, weight)
            other = [2.0 + seed + k for k in range(4)]
            expected[(net, seed)] = np.mean(ibs[-2:]) / np.mean(other[-2:])
    os.makedirs(study / 'data')
    (study / 'data' / 'spec.json').write_text(json.dumps(dict(num_train=7, num_val=3, height=64,
                                                             width=96, seed=5)))
    out = tmp_path / 'out'
    ibs_loss_ratio.main(['--out', str(out), '--seeds', '0', '1', '--tail', '0.5',
                         '--from-study', str(study)])
    stdout = capsys.readouterr().out
    assert 'last 4 iterations, 2 logged windows' in stdout
    result = json.loads((out / 'ibs_loss_ratio.json').read_text())
    assert result['iters'] == dict(panoptic_fcn=8, mask2former=8)
    assert result['num_train'] == 7 and result['size'] == [64, 96] and result['data_seed'] == 5
    assert result['from_study'] == str(study) and result['weights'] == dict(mask2former=20.0)
    for seed in (0, 1):
        entry = result['summary']['cropsamp+ibs']['per_seed'][str(seed)]
        for net in ('panoptic_fcn', 'mask2former'):
            assert entry[net]['ratio'] == pytest.approx(expected[(net, seed)], rel=1e-12)
        implied = 20.0 * expected[('panoptic_fcn', seed)] / expected[('mask2former', seed)]
        assert entry['implied_weight'] == pytest.approx(implied, rel=1e-12)
    run = result['runs'][0]
    assert run['window'] == 2 and run['tail_steps'] == [5, 8] and len(run['ibs']) == 2
    assert 'Runs of the study in' in (out / 'ibs_loss_ratio.md').read_text()
    # nothing trained, no data written
    assert sorted(os.listdir(out)) == ['ibs_loss_ratio.json', 'ibs_loss_ratio.md']


def test_from_study_clear_errors(tmp_path, capsys):
    study = tmp_path / 'study'
    with pytest.raises(SystemExit, match='no trained run'):
        ibs_loss_ratio.read_study_run(str(study), 'panoptic_fcn', 'cropsamp+ibs', 0, 0.5)
    fake_study_run(study, 'panoptic_fcn', 0, 4.0, finished=False)
    with pytest.raises(SystemExit, match='has not finished'):
        ibs_loss_ratio.read_study_run(str(study), 'panoptic_fcn', 'cropsamp+ibs', 0, 0.5)
    fake_study_run(study, 'panoptic_fcn', 1, 4.0, window=1)
    with pytest.raises(SystemExit, match='window_size 1 is not'):
        ibs_loss_ratio.read_study_run(str(study), 'panoptic_fcn', 'cropsamp+ibs', 1, 0.5)
    fake_study_run(study, 'panoptic_fcn', 2, 4.0)
    with pytest.raises(SystemExit, match='not a whole number of the 2-iteration windows'):
        ibs_loss_ratio.read_study_run(str(study), 'panoptic_fcn', 'cropsamp+ibs', 2, 0.125)
    fake_study_run(study, 'panoptic_fcn', 3, 4.0, iters=8)
    config = glob.glob(osp.join(ibs_study.run_dir(str(study), 'panoptic_fcn', 'cropsamp+ibs', 3),
                                'train', '*.py'))[0]
    with open(config, 'a') as f:
        f.write('train_cfg = dict(max_iters=10)\n')  # the log stops before the schedule's end
    with pytest.raises(SystemExit, match='expected the losses logged at iterations 2, 4'):
        ibs_loss_ratio.read_study_run(str(study), 'panoptic_fcn', 'cropsamp+ibs', 3, 0.2)
    for option in (['--iters', '500'], ['--weight', 'mask2former=3']):
        with pytest.raises(SystemExit):
            ibs_loss_ratio.parse_args(['--from-study', str(study), *option])
        assert f'drop {option[0]}' in capsys.readouterr().err


def test_from_study_needs_one_schedule_per_net(tmp_path):
    runs = [dict(net='panoptic_fcn', iters=3000), dict(net='panoptic_fcn', iters=6000)]
    with pytest.raises(SystemExit, match='panoptic_fcn runs of 3000 and 6000 iterations'):
        ibs_loss_ratio.study_settings(str(tmp_path), runs, None)
    with pytest.raises(SystemExit, match='spec.json is missing'):
        ibs_loss_ratio.study_settings(str(tmp_path), runs[:1], None)
