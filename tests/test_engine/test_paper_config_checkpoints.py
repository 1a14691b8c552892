# Copyright (c) mmibs contributors. All rights reserved.
"""Checkpoints of every paper config load with ``torch.load(path)`` (torch's defaults,
``weights_only=True``) and resume.

The paper configs (configs/panoptic_fcn/**, configs/mask2former/**), the MaskFormer + IBS
configs (configs/maskformer/**) and the instance segmentation configs (configs/solov2/**,
configs/condinst/**) share
``configs/_base_/default_runtime.py``: each is checked to build the runner that writes
safe-loadable checkpoints. For one config of each network, the runner the config names is built
as ``tools/train.py`` builds it (:mod:`mmibs.engine.runner_setup`), on ResNet-18 with 16 base
channels and the synthetic Cityscapes set: one iteration is trained and saved, the checkpoint is
read with ``torch.load`` and training resumes from it for a second iteration.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import RUNNERS

from mmibs.engine import SafeCheckpointRunner
from mmibs.engine.runner_setup import build_runner, select_amp_optim_wrapper
from mmibs.registry import HOOKS
from projects.toy_cityscapes.synthetic import make_converted_cityscapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER_CONFIGS = sorted(
    osp.relpath(path, REPO) for network in ('panoptic_fcn', 'mask2former', 'maskformer', 'solov2',
                                                 'condinst')
    for path in glob.glob(osp.join(REPO, 'configs', network, '**', '*.py'), recursive=True))


def test_paper_configs_are_found():
    networks = {rel.split(osp.sep)[1] for rel in PAPER_CONFIGS}
    assert networks == {'panoptic_fcn', 'mask2former', 'maskformer', 'solov2', 'condinst'}
    assert len(PAPER_CONFIGS) > 20


@pytest.mark.parametrize('rel_path', PAPER_CONFIGS)
def test_paper_config_uses_the_safe_runner(rel_path):
    """Every paper config builds SafeCheckpointRunner, whose checkpoints torch.load reads, and
    saves through a CheckpointHook (which calls the runner's save_checkpoint)."""
    cfg = Config.fromfile(osp.join(REPO, rel_path))
    assert RUNNERS.get(cfg.get('runner_type', 'Runner')) is SafeCheckpointRunner, rel_path
    hook = cfg.default_hooks.checkpoint
    assert issubclass(HOOKS.get(hook.type), CheckpointHook), hook


class _IterRecorder(Hook):
    """Records each trained iteration and the weights the first one starts from."""

    def __init__(self) -> None:
        self.iters = []
        self.first_state = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if not self.iters:
            self.first_state = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
        self.iters.append(runner.iter)


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    return make_converted_cityscapes(str(tmp_path_factory.mktemp('cs')), 2, 0, 128, 256)


def _tiny_cfg(rel_path: str, data: dict, work_dir: str, max_iters: int) -> Config:
    """The config on ResNet-18 (16 base channels) and the synthetic images as they are (no
    resizing or cropping, so 128x256 crops), without validation."""
    cfg = Config.fromfile(osp.join(REPO, rel_path))
    cfg.launcher = 'none'
    cfg.work_dir = work_dir
    # a name of its own: runners of one name share their message hub, logger and visualizer
    cfg.experiment_name = f'{osp.basename(rel_path)}_{max_iters}_{osp.basename(work_dir)}'
    model = cfg.model
    model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    if model.type in ('PanopticFCN', 'SOLOv2', 'CondInst'):
        model.neck.in_channels = [16, 32, 64, 128]
    else:
        model.panoptic_head.update(in_channels=[16, 32, 64, 128], num_queries=20)
        model.data_preprocessor.batch_augments[0]['size'] = (128, 256)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
        dict(type='PackDetInputs')
    ]
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(
        data_root=data['data_root'],
        ann_file=data['train_ann_file'],
        data_prefix=data['train_data_prefix'],
        pipeline=pipeline)
    for split in ('val', 'test'):
        cfg[f'{split}_dataloader'] = cfg[f'{split}_cfg'] = cfg[f'{split}_evaluator'] = None
    cfg.train_cfg.update(max_iters=max_iters, val_interval=1000)
    cfg.default_hooks.checkpoint.update(interval=1)
    cfg.default_hooks.logger.update(interval=1)
    select_amp_optim_wrapper(cfg)  # Mask2Former names AmpOptimWrapper: bfloat16 on a CPU
    return cfg


@pytest.mark.parametrize('rel_path', [
    'configs/panoptic_fcn/panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024-ibs.py',
    'configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-crop-512x1024-ibs.py',
    'configs/maskformer/maskformer_r50_8xb2-90k_cityscapes-crop-512x1024-ibs.py',
    'configs/solov2/solov2_r50_8xb4-65k_cityscapes-instance-crop-512x1024-ibs.py',
    'configs/condinst/condinst_r50_8xb4-65k_cityscapes-instance-crop-512x1024-ibs.py',
])
def test_checkpoint_loads_with_torch_defaults_and_resumes(tmp_path, cityscapes, rel_path):
    work_dir = str(tmp_path / 'work')
    runner = build_runner(_tiny_cfg(rel_path, cityscapes, work_dir, max_iters=1))
    assert type(runner) is SafeCheckpointRunner
    runner.train()

    ckpt = torch.load(osp.join(work_dir, 'iter_1.pth'), map_location='cpu')  # torch's defaults
    assert ckpt['meta']['iter'] == 1
    assert ckpt['message_hub']['log_scalars'], 'the history buffers were saved'
    assert {'state_dict', 'optimizer', 'param_schedulers'} <= set(ckpt)

    cfg = _tiny_cfg(rel_path, cityscapes, work_dir, max_iters=2)
    cfg.resume = True  # tools/train.py --resume: the work folder's last checkpoint
    runner = build_runner(cfg)
    recorder = _IterRecorder()
    runner.register_hook(recorder)
    runner.train()
    assert recorder.iters == [1]  # iteration 2 only: continued, not restarted
    for key, value in ckpt['state_dict'].items():
        torch.testing.assert_close(recorder.first_state[key], value, rtol=0, atol=0, msg=key)
    assert torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu')['meta']['iter'] == 2
