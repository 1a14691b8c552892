# Copyright (c) mmibs contributors. All rights reserved.
from .functional import *  # noqa: F401,F403
from .functional import evaluate_panoptic
from .metrics import *  # noqa: F401,F403

__all__ = ['evaluate_panoptic']
