# Copyright (c) mmibs contributors. All rights reserved.
from .safe_checkpoint_runner import SafeCheckpointRunner

__all__ = ['SafeCheckpointRunner']
