# default_runtime.py plus checkpoints that survive a kill and resumes that continue the random
# streams. Opt in by naming this file instead of '../_base_/default_runtime.py' in a config's
# _base_ list (or copy its two settings into a config). docs/engine.md#opt-in-hardening
_base_ = './default_runtime.py'

# mmengine's CheckpointHook writing checkpoint files and the last_checkpoint pointer atomically
# (a run killed while saving leaves the previous checkpoint usable for --resume)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
# the RNG states in every checkpoint, restored on resume: with randomness=dict(seed=...,
# deterministic=True) a killed and resumed single-process run ends with the weights of an
# uninterrupted one. A config that sets its own custom_hooks replaces this list.
custom_hooks = [dict(type='RNGStateHook')]
