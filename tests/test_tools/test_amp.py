# Copyright (c) mmibs contributors. All rights reserved.
"""``tools/train.py`` with AMP on a CPU-only machine trains with bf16 autocast.

mmengine's AmpOptimWrapper refuses to run without a GPU; ``--amp``, or a config that names
``AmpOptimWrapper`` as the released Mask2Former recipe does, then switches to
``CPUAmpOptimWrapper``. Two iterations of the tiny Mask2Former with IBS; every logged loss must be
a finite number. (The float32 dtype of the IBS loss is checked in
tests/test_engine/test_cpu_amp_optim_wrapper.py.) About 15 s on one core.
"""
import math
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                       'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path of --amp')
@pytest.mark.parametrize('amp_from', ['flag', 'config'])
def test_train_amp_on_cpu(tmp_path, amp_from):
    data_root = write_tiny_coco_panoptic(str(tmp_path / 'data') + '/', num_images=2)['data_root']
    cfg = tmp_path / 'amp.py'
    cfg.write_text(f"""
_base_ = [{BASE_CONFIG!r}]
data_root = {data_root!r}
model = dict(panoptic_head=dict(
    type='Mask2FormerIBSHead',
    loss_ibs=dict(type='IBSLoss', partner='pair', num_points=64, loss_weight=50.0)))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic.json',
                      seg_prefix=data_root + 'annotations/panoptic/', backend_args=None)]
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2, val_interval=1000)
param_scheduler = dict(end=2, milestones=[1])
default_hooks = dict(checkpoint=dict(interval=1000, save_last=False),
                     visualization=dict(type='DetVisualizationHook', draw=False))
randomness = dict(seed=0)
""")
    if amp_from == 'config':
        with open(cfg, 'a') as f:
            f.write("optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')\n")
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run(
        [sys.executable, 'tools/train.py',
         str(cfg), '--work-dir',
         str(tmp_path / 'work')] + (['--amp'] if amp_from == 'flag' else []),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "type='CPUAmpOptimWrapper'" in out, 'the dumped config does not use the CPU wrapper'
    iter_lines = [
        line for line in out.splitlines() if re.search(r'Iter\(train\)\s+\[\s*\d+/2\]', line)
    ]
    assert len(iter_lines) == 2, out[-3000:]
    for line in iter_lines:
        losses = dict(re.findall(r'(\S*loss\S*): (\S+)', line))
        assert 'loss_ibs' in losses, line
        for key, value in losses.items():
            assert math.isfinite(float(value)), f'{key} = {value} in: {line}'
