# Copyright (c) mmibs contributors. All rights reserved.
"""The one import site for registries.

mmibs registers its modules into **mmdet's** registries rather than child registries
(``docs/engine.md#registries-and-scopes``): configs inherit mmdet bases through ``mmdet::``, whose
type dicts carry ``_scope_='mmdet'``, and ``default_scope='mmdet'`` then finds mmibs types without
any prefix.
"""
from mmdet.registry import (DATA_SAMPLERS, DATASETS, EVALUATOR, HOOKS, LOOPS,
                            METRICS, MODELS, OPTIM_WRAPPERS, PARAM_SCHEDULERS,
                            TASK_UTILS, TRANSFORMS, VISBACKENDS, VISUALIZERS)

__all__ = [
    'DATA_SAMPLERS', 'DATASETS', 'EVALUATOR', 'HOOKS', 'LOOPS', 'METRICS',
    'MODELS', 'OPTIM_WRAPPERS', 'PARAM_SCHEDULERS', 'TASK_UTILS', 'TRANSFORMS',
    'VISBACKENDS', 'VISUALIZERS'
]
