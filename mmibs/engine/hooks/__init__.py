# Copyright (c) mmibs contributors. All rights reserved.
from .rng_state_hook import RNGStateHook

__all__ = ['RNGStateHook']
