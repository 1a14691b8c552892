# Copyright (c) mmibs contributors. All rights reserved.
"""RNGStateHook: a run stopped at a checkpoint and resumed continues the random streams.

In-process runners (mmibs' SafeCheckpointRunner, whose checkpoints torch's weights_only loader
reads on resume) on a toy model whose data (numpy, Python ``random``) and forward
(torch) draw random numbers, so the result depends on every stream; ~3 s.
"""
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from mmibs.engine import SafeCheckpointRunner
from mmibs.engine.hooks.rng_state_hook import get_rng_states, set_rng_states


class _RandomDataset(Dataset):
    """Items drawn from the main process' numpy and Python streams (``num_workers=0``)."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, idx: int) -> dict:
        noise = np.random.rand(3).astype(np.float32) + random.random()
        return dict(x=torch.from_numpy(noise) + idx)


class _ToyModel(BaseModel):
    """A linear model with a torch-random perturbation, like IBS' random partner choice."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3))

    def forward(self, x, mode: str = 'loss'):
        x = torch.stack(x)
        # shape (B, 3) * (3, ) -> (B, )
        pred = (x * (self.weight + 0.1 * torch.randn(3))).sum(dim=1)
        return dict(loss=(pred - 1.0).pow(2).mean())


def _train(work_dir: str, max_iters: int, hooks: list, resume: bool = False) -> torch.Tensor:
    runner = SafeCheckpointRunner(
        model=_ToyModel(),
        work_dir=work_dir,
        experiment_name=f'{osp.basename(work_dir)}_{max_iters}_{resume}',
        train_dataloader=dict(
            dataset=_RandomDataset(),
            # mmibs' configs' sampler; DefaultSampler would sleep 2 s at every epoch end
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1),
            logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=hooks,
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmdet')
    runner.train()
    return runner.model.weight.detach().clone()


@pytest.mark.parametrize('stop_at', [1, 4])
def test_resumed_run_equals_uninterrupted(tmp_path, stop_at):
    """Stops after iteration 1 or 4 (5 items, batch 2: mid-pass and after a pass)."""
    hooks = [dict(type='RNGStateHook')]
    reference = _train(str(tmp_path / 'ref'), 9, hooks)
    _train(str(tmp_path / 'cut'), stop_at, hooks)
    resumed = _train(str(tmp_path / 'cut'), 9, hooks, resume=True)
    torch.testing.assert_close(resumed, reference, rtol=0, atol=0)

    # Control: without the hook the resumed run draws other numbers and ends elsewhere, so the
    # comparison above can fail.
    _train(str(tmp_path / 'nohook'), stop_at, [])
    other = _train(str(tmp_path / 'nohook'), 9, [], resume=True)
    assert not torch.allclose(other, reference)


def test_checkpoint_holds_loadable_states(tmp_path):
    import mmibs  # noqa: F401  (weights_only loading of mmengine checkpoints)
    _train(str(tmp_path / 'w'), 1, [dict(type='RNGStateHook')])
    ckpt = torch.load(str(tmp_path / 'w' / 'iter_1.pth'), map_location='cpu', weights_only=True)
    states = ckpt['rng_state']
    assert set(states) == {'python', 'numpy', 'torch', 'cuda'}


def test_get_set_rng_states_roundtrip():
    states = get_rng_states()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_states(states)
    second = (random.random(), np.random.rand(), torch.rand(1).item())
    assert first == second
