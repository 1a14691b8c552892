# Copyright (c) mmibs contributors. All rights reserved.
"""tools/train.py -> --resume -> tools/test.py, and `mim train mmibs`, on a config that inherits an
mmdet base.

These run the real scripts in subprocesses, as a user would, on a tiny COCO-panoptic set.
"""
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
import torch

from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                       'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')


def _config_on(tmp_path, data_root: str) -> str:
    """A config inheriting the tiny test config, pointed at ``data_root``."""
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(f"""
_base_ = [{BASE_CONFIG!r}]
data_root = {data_root!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic.json',
                      seg_prefix=data_root + 'annotations/panoptic/', backend_args=None)]
test_evaluator = val_evaluator
randomness = dict(seed=0)
# the runner of mmibs' configs: checkpoints torch.load reads, architecture check on load
runner_type = 'SafeCheckpointRunner'
""")
    return str(cfg)


def _run(cmd, cwd=REPO):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{cmd} failed ({proc.returncode}):\n{out[-6000:]}'
    return out


@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_coco_panoptic')
    return write_tiny_coco_panoptic(str(root) + '/', num_images=2)


def test_train_stop_resume_test(tmp_path, tiny_set):
    cfg = _config_on(tmp_path, tiny_set['data_root'])
    work_dir = str(tmp_path / 'work')

    # 1. Train for 2 of the 4 iterations, then stop (a run cut short).
    out = _run([sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir,
                '--cfg-options', 'train_cfg.max_iters=2'])
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth')), out[-3000:]
    assert not osp.exists(osp.join(work_dir, 'iter_4.pth'))
    # The checkpoint loads with torch.load's defaults (weights_only=True): mmibs allow-lists what
    # mmengine stores instead of switching the safety off.
    import mmibs  # noqa: F401
    ckpt = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 2

    # 2. Resume: continues from iteration 2 up to 4, not from scratch.
    out = _run([sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir, '--resume'])
    assert re.search(r'resumed (epoch: \d+, )?iter: 2', out), out[-3000:]
    iters_logged = [int(i) for i in re.findall(r'Iter\(train\)\s+\[\s*(\d+)/4\]', out)]
    assert iters_logged == [3, 4], out[-3000:]
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    ckpt = torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 4

    # 3. Evaluate the checkpoint: PQ numbers come back.
    test_dir = str(tmp_path / 'test')
    out = _run([sys.executable, 'tools/test.py', cfg, osp.join(work_dir, 'iter_4.pth'),
                '--work-dir', test_dir])
    result_files = glob.glob(osp.join(test_dir, '*', '*.json'))
    assert result_files, out[-3000:]
    with open(result_files[0]) as f:
        metrics = json.load(f)
    for key in ('coco_panoptic/PQ', 'coco_panoptic/SQ', 'coco_panoptic/RQ', 'coco_panoptic/PQ_th',
                'coco_panoptic/PQ_st'):
        assert key in metrics and 0.0 <= metrics[key] <= 100.0, metrics


def test_mim_train_and_test(tmp_path, tiny_set):
    """`mim train|test mmibs CONFIG` find mmibs' tools through the develop install."""
    mim = shutil.which('mim', path=osp.dirname(sys.executable))
    assert mim is not None, 'mim is not installed in the environment'
    cfg = _config_on(tmp_path, tiny_set['data_root'])
    work_dir = str(tmp_path / 'mim_work')
    out = _run([mim, 'train', 'mmibs', cfg, '--work-dir', work_dir, '--cfg-options',
                'train_cfg.max_iters=2'])
    finished = osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert 'Training finished successfully' in out or finished, out[-3000:]
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    # mim ran mmibs' own script (it imports mmibs before reading the config).
    assert osp.realpath(osp.join(REPO, 'mmibs', '.mim', 'tools', 'train.py')) == \
        osp.realpath(osp.join(REPO, 'tools', 'train.py'))

    out = _run([mim, 'test', 'mmibs', cfg, '--checkpoint', osp.join(work_dir, 'iter_2.pth'),
                '--work-dir', str(tmp_path / 'mim_test')])
    assert 'coco_panoptic/PQ' in out, out[-3000:]
