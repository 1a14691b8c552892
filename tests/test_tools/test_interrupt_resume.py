# Copyright (c) mmibs contributors. All rights reserved.
"""A training run killed mid-way and resumed with ``--resume`` ends with the weights of an
uninterrupted run.

The model is the tiny Mask2Former with the IBS head and ``partner='random'``, so the model draws
random numbers at every step (random partner, point sampling), and the pipeline has a RandomFlip
run in the main process (``num_workers=0``): a resumed run that did not continue the random
streams (mmibs' ``RNGStateHook``) would end with other weights. Runs ``tools/train.py`` in
subprocesses, as a user would: 4 runs, ~50 s of CPU (mostly start-up).
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                       'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')
MAX_ITERS = 6


def _config_on(tmp_path, data_root: str) -> str:
    """The tiny Mask2Former with IBS ('random' partner) and the opt-in hardening of
    configs/_base_/runtime_safe.py (AtomicCheckpointHook, RNGStateHook), checkpoints every 2
    iterations."""
    cfg = tmp_path / 'tiny_ibs.py'
    cfg.write_text(f"""
_base_ = [{BASE_CONFIG!r}]
data_root = {data_root!r}
model = dict(panoptic_head=dict(
    type='Mask2FormerIBSHead',
    loss_ibs=dict(type='IBSLoss', partner='random', num_points=64, loss_weight=50.0)))
# mmibs' configs' sampler (mmdet's DefaultSampler sleeps 2 s at every pass over the 4 images)
train_dataloader = dict(
    sampler=dict(type='InfiniteSampler', shuffle=True), dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic.json',
                      seg_prefix=data_root + 'annotations/panoptic/', backend_args=None)]
test_evaluator = val_evaluator
train_cfg = dict(max_iters={MAX_ITERS}, val_interval=1000)
param_scheduler = dict(end={MAX_ITERS}, milestones=[3])
# runtime_safe.py's two settings (it cannot be a second base: default_hooks is in both)
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=2, max_keep_ckpts=10),
    visualization=dict(type='DetVisualizationHook', draw=False))
custom_hooks = [dict(type='RNGStateHook')]
randomness = dict(seed=0, deterministic=True)
# checkpoints torch.load reads with its defaults
runner_type = 'SafeCheckpointRunner'
""")
    return str(cfg)


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')


def _train(cfg: str, work_dir: str, *extra: str) -> str:
    proc = subprocess.run([sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir, *extra],
                          cwd=REPO,
                          env=_env(),
                          capture_output=True,
                          text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'train failed ({proc.returncode}):\n{out[-6000:]}'
    return out


def _train_until_killed(cfg: str, work_dir: str, checkpoint: str, sig: int, *extra: str) -> None:
    """Start training, wait until ``last_checkpoint`` points at ``checkpoint``, send ``sig``."""
    log = open(osp.join(osp.dirname(work_dir), f'killed_{sig}.log'), 'w')
    proc = subprocess.Popen([sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir, *extra],
                            cwd=REPO,
                            env=_env(),
                            stdout=log,
                            stderr=subprocess.STDOUT)
    pointer = osp.join(work_dir, 'last_checkpoint')
    try:
        while not _points_at(pointer, checkpoint):  # pytest's timeout guards a stalled run
            assert proc.poll() is None, f'training ended ({proc.returncode}) before {checkpoint}'
            time.sleep(0.05)
        proc.send_signal(sig)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # Killed before the end: the final checkpoint does not exist.
    assert proc.returncode != 0
    assert not osp.exists(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))


def _points_at(pointer: str, checkpoint: str) -> bool:
    """Whether the ``last_checkpoint`` file names ``checkpoint`` (written atomically by
    AtomicCheckpointHook)."""
    if not osp.exists(pointer):
        return False
    with open(pointer) as f:
        return osp.basename(f.read().strip()) == checkpoint


def _weights(path: str) -> dict:
    return torch.load(path, map_location='cpu')['state_dict']


@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_coco_panoptic_resume')
    return write_tiny_coco_panoptic(str(root) + '/', num_images=4)


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path, tiny_set):
    import mmibs  # noqa: F401  (checkpoints load with torch.load's defaults, weights_only=True)
    cfg = _config_on(tmp_path, tiny_set['data_root'])

    reference_dir = str(tmp_path / 'reference')
    _train(cfg, reference_dir)
    reference = _weights(osp.join(reference_dir, f'iter_{MAX_ITERS}.pth'))

    # Killed twice: SIGKILL after iteration 2's checkpoint, then (resumed) SIGTERM after
    # iteration 4's; the final resume reaches MAX_ITERS.
    work_dir = str(tmp_path / 'interrupted')
    _train_until_killed(cfg, work_dir, 'iter_2.pth', signal.SIGKILL)
    _train_until_killed(cfg, work_dir, 'iter_4.pth', signal.SIGTERM, '--resume')
    out = _train(cfg, work_dir, '--resume')
    assert 'resumed' in out and 'iter: 4' in out, out[-3000:]
    # every checkpoint written in place is complete, none half-written
    for name in sorted(os.listdir(work_dir)):
        if name.endswith('.pth'):
            assert 'rng_state' in torch.load(osp.join(work_dir, name), map_location='cpu'), name
    resumed = _weights(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))

    assert reference.keys() == resumed.keys()
    for key, value in reference.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-6, msg=key)
    # Training moved the weights after the first kill point, so the comparison is not trivial.
    # (Without RNGStateHook the same kill and resume ends with other weights: checked on this
    # config when the test was written, and in-process in tests/test_engine/test_rng_state_hook.py.)
    start = _weights(osp.join(reference_dir, 'iter_2.pth'))
    assert any(not torch.equal(start[k], reference[k]) for k in reference)
