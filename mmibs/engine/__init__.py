# Copyright (c) mmibs contributors. All rights reserved.
from .checkpoint import (AtomicCheckpointHook, AtomicLocalBackend, SafeCheckpointRunner,
                         allow_mmengine_checkpoint_globals, check_checkpoint_fits_model,
                         history_buffers_without_methods)
from .cpu_dist import accelerator_available, init_cpu_dist, setup_cpu_distributed
from .hooks import RNGStateHook
from .optim import CPUAmpOptimWrapper

__all__ = [
    'AtomicCheckpointHook', 'AtomicLocalBackend', 'SafeCheckpointRunner',
    'allow_mmengine_checkpoint_globals', 'check_checkpoint_fits_model',
    'history_buffers_without_methods', 'accelerator_available', 'init_cpu_dist',
    'setup_cpu_distributed', 'RNGStateHook', 'CPUAmpOptimWrapper'
]
