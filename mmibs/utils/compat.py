# Copyright (c) mmibs contributors. All rights reserved.
"""Compatibility of the pinned OpenMMLab stack with newer torch releases.

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, and mmengine 0.10.7 calls
``torch.load`` without the argument, so resuming, ``load_from`` and ``tools/test.py`` fail with an
``UnpicklingError`` on the non-tensor objects mmengine stores in its checkpoints (the message hub's
``HistoryBuffer`` s and their numpy arrays). Upstream fixed it after 0.10.7 (mmengine#1670) by
switching the safety off. mmibs keeps the safe loader and allow-lists exactly the globals that
mmengine checkpoints hold (``openmmlab_stack.md`` §5).

One global cannot be allow-listed safely: ``HistoryBuffer.__getstate__`` pickles its statistics
methods (``HistoryBuffer.min`` ...) as ``getattr(HistoryBuffer, 'min')``, and allowing ``getattr``
would let a crafted checkpoint reach any attribute of any allowed object, i.e. run code. Those methods
live in a class-level registry that ``__setstate__`` rebuilds anyway, so mmibs pickles a
``HistoryBuffer`` without them. Checkpoints written by plain mmengine 0.10.x still reference
``getattr`` and need ``weights_only=False`` (only for files you trust); mmibs' own load fine.
"""
import torch

# Filled in by apply(); the tuple of what was allow-listed, for tests and the curious.
ALLOWED_GLOBALS: tuple = ()


def _mmengine_checkpoint_globals() -> list:
    """The classes and functions that pickled mmengine checkpoints reference besides tensors."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar

    # What an mmengine checkpoint's pickle references besides tensors: the message hub's
    # HistoryBuffers hold numpy arrays and scalars (tests/test_utils/test_compat.py loads one).
    found = [HistoryBuffer, np.ndarray, np.dtype, _reconstruct, scalar]
    # numpy >= 1.25 builds dtype instances through their classes (numpy.dtypes.Float64DType ...),
    # which `get_unsafe_globals_in_checkpoint` does not report: allow the plain numeric ones.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float64DType', 'Float32DType', 'Float16DType', 'Int64DType', 'Int32DType',
                     'Int16DType', 'Int8DType', 'UInt64DType', 'UInt32DType', 'UInt16DType',
                     'UInt8DType', 'BoolDType'):
            cls = getattr(dtypes, name, None)
            if cls is not None:
                found.append(cls)
    return found


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer.__getstate__`` without the statistics methods (see the module docstring).

    The methods are class attributes registered at import time (``register_statistics``), and
    ``HistoryBuffer.__setstate__`` restores the defaults itself, so nothing is lost.
    """
    return {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}


def _make_checkpoints_safe() -> None:
    """Atomic checkpoint / ``last_checkpoint`` writes and a refusal of checkpoints of another
    architecture: see :mod:`mmibs.engine.checkpoint_safety` (a kill never leaves a truncated
    checkpoint for ``--resume``)."""
    from mmibs.engine import checkpoint_safety
    checkpoint_safety.apply()


def _check_panoptic_annotations() -> None:
    """Panoptic PNGs of mmibs' datasets are checked against their json entry and image when
    mmdet's ``LoadPanopticAnnotations`` loads them: see
    :mod:`mmibs.datasets.transforms.panoptic_annotation_check`."""
    from mmibs.datasets.transforms import panoptic_annotation_check
    panoptic_annotation_check.install()


def apply() -> None:
    """Make mmengine checkpoints loadable with ``torch.load(weights_only=True)``.

    Pickles ``HistoryBuffer`` without function references and allow-lists the remaining globals.
    Also makes checkpoint writes atomic and checks loaded checkpoints against the model
    (:func:`_make_checkpoints_safe`), and checks panoptic PNGs against their json entries
    (:func:`_check_panoptic_annotations`). Idempotent. The allow-listing is a no-op on torch
    releases without :func:`torch.serialization.add_safe_globals`.
    """
    global ALLOWED_GLOBALS
    from mmengine.logging.history_buffer import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    _make_checkpoints_safe()
    _check_panoptic_annotations()
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None or ALLOWED_GLOBALS:
        return
    ALLOWED_GLOBALS = tuple(_mmengine_checkpoint_globals())
    add_safe_globals(list(ALLOWED_GLOBALS))
