# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .rng_state_hook import RNGStateHook

__all__ = ['RNGStateHook']
