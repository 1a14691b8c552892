# Copyright (c) mmibs contributors. All rights reserved.
"""Let torch's safe checkpoint loader read mmengine checkpoints (the one thing done on import).

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, and mmengine 0.10.7 calls
``torch.load`` without the argument, so resuming, ``load_from`` and ``tools/test.py`` fail with an
``UnpicklingError`` on the non-tensor objects mmengine stores in its checkpoints (the message hub's
``HistoryBuffer`` s and their numpy arrays). Upstream fixed it after 0.10.7 (mmengine#1670) by
switching the safety off. mmibs keeps the safe loader and allow-lists exactly the globals that
mmengine checkpoints hold (``docs/engine.md``).

:func:`allow_mmengine_checkpoint_globals` runs when mmibs is imported. It only *adds* entries to
torch's allow-list (:func:`torch.serialization.add_safe_globals`): no attribute of torch, mmengine
or mmdet is replaced, and nothing that loaded before stops loading.

One global cannot be allow-listed safely: mmengine's ``HistoryBuffer.__getstate__`` pickles its
statistics methods (``HistoryBuffer.min`` ...) as ``getattr(HistoryBuffer, 'min')``, and allowing
``getattr`` would let a crafted checkpoint reach any attribute of any allowed object, i.e. run code.
:class:`mmibs.engine.SafeCheckpointRunner` therefore writes its checkpoints' history buffers without
those methods (``HistoryBuffer.__setstate__`` restores them). Checkpoints written by a plain
mmengine ``Runner`` still reference ``getattr`` and need ``weights_only=False`` (only for files you
trust).
"""
import torch

# Filled in by allow_mmengine_checkpoint_globals(): what was allow-listed (for tests).
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


def allow_mmengine_checkpoint_globals() -> tuple:
    """Add what mmengine checkpoints hold to torch's ``weights_only`` allow-list (idempotent).

    Run on ``import mmibs``. A no-op on torch releases without
    :func:`torch.serialization.add_safe_globals`.

    Returns:
        tuple: The allow-listed classes and functions (:data:`ALLOWED_GLOBALS`).
    """
    global ALLOWED_GLOBALS
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None or ALLOWED_GLOBALS:
        return ALLOWED_GLOBALS
    ALLOWED_GLOBALS = tuple(_mmengine_checkpoint_globals())
    add_safe_globals(list(ALLOWED_GLOBALS))
    return ALLOWED_GLOBALS
