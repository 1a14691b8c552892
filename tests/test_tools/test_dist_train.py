# Copyright (c) mmibs contributors. All rights reserved.
"""tools/dist_train.sh with 2 gloo processes on the CPU, for both IBS networks.

Each network trains 2 iterations with 2 images per rank on the tiny COCO-panoptic set. A small
hook (written into ``tmp_path`` and loaded through the config's ``custom_imports``) saves every
rank's weights, the images it saw and its losses. The ranks must end with identical weights while
having seen different images (so identical weights come from DDP's gradient averaging, not from
identical inputs), and every loss, IBS included, must be finite. About 20-30 s per network on 2
cores.
"""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

from mmibs.testing import tiny_panoptic_fcn_cfg
from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                       'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')

HOOK_MODULE = '''
import os
import torch
from mmengine.hooks import Hook
from mmibs.registry import HOOKS


@HOOKS.register_module()
class DumpRankStateHook(Hook):
    """Save this rank's weights, image ids and losses after training (test helper)."""

    def __init__(self):
        self.img_ids, self.losses = [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.img_ids += [s.img_id for s in data_batch['data_samples']]
        self.losses.append({k: float(v) for k, v in outputs.items()})

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        torch.save(dict(state={k: v.detach().clone() for k, v in model.state_dict().items()},
                        img_ids=self.img_ids, losses=self.losses,
                        wrapper=type(runner.model).__name__),
                   os.path.join(runner.work_dir, f'rank{runner.rank}.pth'))
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _config(tmp_path, data_root: str, network: str) -> str:
    if network == 'mask2former':
        model = """model = dict(panoptic_head=dict(
    type='Mask2FormerIBSHead',
    loss_ibs=dict(type='IBSLoss', partner='pair', num_points=64, loss_weight=50.0)))"""
    else:
        model = tiny_panoptic_fcn_cfg(num_things_classes=2, num_stuff_classes=1, ibs=True)
        model['panoptic_head']['loss_ibs'].update(partner='random')
        model = f'model = dict(_delete_=True, **{model!r})'
    cfg = tmp_path / f'dist_{network}.py'
    cfg.write_text(f"""
_base_ = [{BASE_CONFIG!r}]
custom_imports = dict(imports=['mmibs', 'dump_rank_state'], allow_failed_imports=False)
data_root = {data_root!r}
{model}
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic.json',
                      seg_prefix=data_root + 'annotations/panoptic/', backend_args=None)]
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2, val_interval=1000)
param_scheduler = dict(end=2, milestones=[1])
default_hooks = dict(checkpoint=dict(interval=1000, save_last=False),
                     visualization=dict(type='DetVisualizationHook', draw=False))
custom_hooks = [dict(type='DumpRankStateHook')]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
""")
    return str(cfg)


@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_coco_panoptic_dist')
    return write_tiny_coco_panoptic(str(root) + '/', num_images=4)


@pytest.mark.parametrize('network', ['mask2former', 'panoptic_fcn'])
def test_dist_train_two_gloo_ranks_identical_weights(tmp_path, tiny_set, network):
    (tmp_path / 'dump_rank_state.py').write_text(HOOK_MODULE)
    cfg = _config(tmp_path, tiny_set['data_root'], network)
    work_dir = tmp_path / 'work'
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PYTHONUNBUFFERED='1',
        PORT=str(_free_port()),
        PYTHONPATH=os.pathsep.join([str(tmp_path), REPO,
                                    os.environ.get('PYTHONPATH', '')]),
        # dist_train.sh runs `python`: the interpreter running the tests
        PATH=osp.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run(['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir',
                           str(work_dir)],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]

    ranks = [torch.load(work_dir / f'rank{r}.pth', weights_only=False) for r in range(2)]
    assert all(r['wrapper'] == 'MMDistributedDataParallel' for r in ranks), ranks[0]['wrapper']
    # different data on the two ranks ...
    assert len(ranks[0]['img_ids']) == len(ranks[1]['img_ids']) == 4
    for it in range(2):  # the sampler shards every iteration's global batch across the ranks
        batch0, batch1 = (set(r['img_ids'][2 * it:2 * it + 2]) for r in ranks)
        assert not batch0 & batch1, ranks[0]['img_ids'] + ranks[1]['img_ids']
    # ... and still identical weights (bit-exact: DDP all-reduces the same gradient to both)
    state0, state1 = ranks[0]['state'], ranks[1]['state']
    assert state0.keys() == state1.keys()
    differing = [k for k in state0 if not torch.equal(state0[k], state1[k])]
    assert not differing, differing[:5]
    for rank in ranks:
        assert len(rank['losses']) == 2
        for step in rank['losses']:
            assert any('ibs' in k for k in step), sorted(step)
            assert all(torch.isfinite(torch.tensor(v)) for v in step.values()), step
