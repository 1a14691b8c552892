# Copyright (c) mmibs contributors. All rights reserved.
"""Multi-process training and testing on CPUs (gloo) under mmengine's launchers.

Two things stop mmengine 0.10.x from running ``--launcher pytorch|slurm|mpi`` without a GPU:

1. ``mmengine.dist.init_dist`` (through ``_init_dist_pytorch`` / ``_init_dist_slurm`` /
   ``_init_dist_mpi``) calls ``torch.cuda.set_device(local_rank)`` unconditionally before
   ``init_process_group``; a CPU-only torch build raises ``AttributeError: module 'torch._C' has
   no attribute '_cuda_setDevice'``.
2. ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to ``MMDistributedDataParallel``,
   which torch's DDP refuses for a module on the CPU.

:func:`setup_cpu_distributed` handles both, for a tool to call before it builds the runner
(``tools/train.py`` and ``tools/test.py`` do): it starts the process group itself, so the runner
finds it started and skips ``init_dist``, and it sets ``model_wrapper_cfg`` so that DDP gets no
``device_ids``. Nothing happens on import, and nothing happens with a GPU (or NPU/MLU/MUSA) or with
``launcher='none'``.
"""
from contextlib import contextmanager
from typing import Iterator

import torch
from mmdet.registry import MODEL_WRAPPERS  # looked up only: mmibs registers no model wrapper
from mmengine.config import Config
from mmengine.device import (is_cuda_available, is_mlu_available, is_musa_available,
                             is_npu_available)
from mmengine.dist import init_dist, is_distributed
from mmengine.logging import print_log
from torch.nn.parallel import DistributedDataParallel

__all__ = ['accelerator_available', 'init_cpu_dist', 'setup_cpu_distributed']


def accelerator_available() -> bool:
    """Whether torch sees a GPU, NPU, MLU or MUSA device (mmengine's launchers and AMP use them)."""
    return (is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available())


@contextmanager
def _cuda_set_device_skipped() -> Iterator[None]:
    """``torch.cuda.set_device`` does nothing inside the block (only used without CUDA).

    mmengine's launcher functions call ``torch.cuda.set_device`` in the middle of their
    environment handling (slurm's address look-up, MPI's ranks); switching it off for the one
    :func:`init_dist` call lets the CPU path reuse that handling instead of copying it. The
    original function is put back when the block ends, also on an error, so nothing outside the
    call sees the change.
    """
    original = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = original


def init_cpu_dist(launcher: str, backend: str = 'gloo', **kwargs) -> None:
    """Start the process group of ``launcher`` without touching CUDA.

    Args:
        launcher (str): ``'pytorch'``, ``'slurm'`` or ``'mpi'``, as for
            :func:`mmengine.dist.init_dist`.
        backend (str): The torch.distributed backend. Defaults to 'gloo' (the CPU backend).
        **kwargs: Passed to :func:`mmengine.dist.init_dist` (``timeout`` in seconds ...).
    """
    with _cuda_set_device_skipped():
        init_dist(launcher, backend=backend, **kwargs)


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a CPU-only multi-process run of ``cfg`` (``cfg.launcher`` set by the tool).

    Without an accelerator and with a launcher other than ``'none'``: starts the process group
    (``env_cfg.dist_cfg``, with the backend ``'gloo'`` whatever the config names: NCCL needs
    GPUs) and lets ``MMDistributedDataParallel`` (or the DDP subclass named by
    ``model_wrapper_cfg``) wrap the CPU model without ``device_ids``. Call it before building the
    runner.

    Args:
        cfg (Config): The full config; ``model_wrapper_cfg`` and ``env_cfg.dist_cfg.backend``
            may be set in place.

    Returns:
        bool: Whether anything was set up (False with an accelerator or no launcher).
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or accelerator_available():
        return False
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'gloo')
    if backend != 'gloo':
        print_log(
            f"setup_cpu_distributed: no GPU; using the 'gloo' backend instead of {backend!r} "
            '(env_cfg.dist_cfg.backend)',
            logger='current')
        # the runner logs and dumps the config: let it name the backend in use
        cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if not is_distributed():
        init_cpu_dist(launcher, backend='gloo', **dist_cfg)

    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is None:
        # what Runner.wrap_model builds without model_wrapper_cfg, minus device_ids
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        wrapper_type = wrapper_cfg.get('type', 'MMDistributedDataParallel')
        if isinstance(wrapper_type, str):
            wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
        if isinstance(wrapper_type, type) and issubclass(wrapper_type, DistributedDataParallel):
            # Runner.wrap_model only sets device_ids where the config does not
            wrapper_cfg.setdefault('device_ids', None)
    return True
