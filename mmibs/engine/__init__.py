# Copyright (c) mmibs contributors. All rights reserved.
from .checkpoint_safety import (AtomicLocalBackend, check_checkpoint_fits_model,
                                history_buffers_without_methods)
from .cpu_dist import accelerator_available, init_cpu_dist, setup_cpu_distributed
from .hooks import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
