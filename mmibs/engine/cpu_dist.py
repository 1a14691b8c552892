# Copyright (c) mmibs contributors. All rights reserved.
"""Let MMEngine's distributed launchers start CPU-only processes (gloo backend).

``mmengine.dist.utils._init_dist_pytorch`` / ``_init_dist_slurm`` / ``_init_dist_mpi`` (0.10.7)
call ``torch.cuda.set_device(local_rank)`` unconditionally before ``init_process_group``; on a
CPU-only torch build that raises ``AttributeError: module 'torch._C' has no attribute
'_cuda_setDevice'``, so ``tools/dist_train.sh`` could not run at all without a GPU. The patch
below runs those functions with ``torch.cuda.set_device`` turned into a no-op *only when CUDA is
unavailable*; with a GPU nothing changes.

Likewise ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
:class:`~mmengine.model.MMDistributedDataParallel`, which torch's DDP refuses for CPU modules; on
a machine without CUDA the wrapper drops ``device_ids`` / ``output_device`` for modules whose
parameters are all on the CPU (what DDP requires for CPU modules). Applied once, on
``import mmibs``.
"""
import functools
from contextlib import contextmanager

import torch
from mmengine.dist import utils as dist_utils
from mmengine.model import MMDistributedDataParallel

_PATCHED = ('_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi')


@contextmanager
def _no_cuda_set_device():
    """Make ``torch.cuda.set_device`` a no-op for the duration, when CUDA is unavailable."""
    if torch.cuda.is_available():
        yield
        return
    original = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = original


def _cpu_safe(init_fn):

    @functools.wraps(init_fn)
    def wrapper(*args, **kwargs):
        with _no_cuda_set_device():
            return init_fn(*args, **kwargs)

    wrapper._mmibs_cpu_safe = True
    return wrapper


def patch_mmengine_dist_init() -> None:
    """Wrap mmengine's launcher init functions (idempotent)."""
    for name in _PATCHED:
        fn = getattr(dist_utils, name, None)
        if fn is not None and not getattr(fn, '_mmibs_cpu_safe', False):
            setattr(dist_utils, name, _cpu_safe(fn))


def patch_mmddp_cpu_device_ids() -> None:
    """Drop ``device_ids`` for CPU modules when CUDA is unavailable (idempotent)."""
    init = MMDistributedDataParallel.__init__
    if getattr(init, '_mmibs_cpu_safe', False):
        return

    @functools.wraps(init)
    def wrapper(self, module, detect_anomalous_params=False, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu and not torch.cuda.is_available():
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        init(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    wrapper._mmibs_cpu_safe = True
    MMDistributedDataParallel.__init__ = wrapper


patch_mmengine_dist_init()
patch_mmddp_cpu_device_ids()
