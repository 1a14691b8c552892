# Copyright (c) mmibs contributors. All rights reserved.
from .hooks import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from . import cpu_dist  # noqa: F401  (CPU-only torch under mmengine's launchers)
