# Copyright (c) mmibs contributors. All rights reserved.
"""setup_cpu_distributed: what tools/train.py and tools/test.py call for CPU multi-process runs.

One in-process gloo group of one rank (the two-process run is tests/test_tools/test_dist_train.py).
"""
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmdet.registry import MODEL_WRAPPERS
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from torch import nn

from mmibs.engine import accelerator_available, setup_cpu_distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_no_launcher_changes_nothing():
    cfg = Config(dict(launcher='none', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert not setup_cpu_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg and not dist.is_initialized()


@pytest.mark.skipif(accelerator_available(), reason='checks the CPU-only path')
def test_cpu_launcher_starts_gloo_and_wraps_without_device_ids(monkeypatch):
    for key, value in dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(key, value)
    # fix the (default) start method, so that init_dist does not switch this process to spawn
    mp.get_start_method()
    set_device = torch.cuda.set_device
    # a config written for GPUs: nccl, no model_wrapper_cfg
    cfg = Config(dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    try:
        assert setup_cpu_distributed(cfg)
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'  # what the runner logs and dumps
        assert torch.cuda.set_device is set_device  # switched off only during init_dist
        assert cfg.model_wrapper_cfg.device_ids is None
        # Runner.wrap_model passes device_ids as a default argument: the config's None wins
        wrapped = MODEL_WRAPPERS.build(
            cfg.model_wrapper_cfg, default_args=dict(module=nn.Linear(2, 2), device_ids=[0]))
        assert type(wrapped) is MMDistributedDataParallel and wrapped.device_ids is None

        # a configured DDP wrapper keeps its settings and loses only device_ids
        cfg = Config(
            dict(
                launcher='pytorch',
                model_wrapper_cfg=dict(
                    type='MMDistributedDataParallel', find_unused_parameters=True)))
        assert setup_cpu_distributed(cfg)  # the group exists: not started again
        assert cfg.model_wrapper_cfg.to_dict() == dict(
            type='MMDistributedDataParallel', find_unused_parameters=True, device_ids=None)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
