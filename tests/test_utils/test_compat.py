# Copyright (c) mmibs contributors. All rights reserved.
"""Checkpoints as SafeCheckpointRunner writes them load with torch's safe loader after
`import mmibs`, and the safety stays on."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer

import mmibs  # noqa: F401
from mmibs.engine.checkpoint_safety import history_buffers_without_methods
from mmibs.utils import compat


def _mmengine_like_checkpoint():
    hub = MessageHub.get_instance('test_compat')
    for v in (3.0, 1.0, 2.0):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 3)
    checkpoint = dict(
        meta=dict(iter=3, epoch=0, seed=0, dataset_meta=dict(classes=('car', 'road'))),
        state_dict={'w': torch.ones(2)},
        message_hub=hub.state_dict(),
        np_scalar=np.float32(1.5),
        np_array=np.arange(4, dtype=np.int64))
    # what SafeCheckpointRunner does to every checkpoint before saving it
    return history_buffers_without_methods(checkpoint)


def test_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    # The statistics methods work after loading although they were not pickled.
    assert buffer.mean() == pytest.approx(2.0)
    assert buffer.min() == 1.0 and buffer.current() == 2.0
    assert ckpt['np_scalar'] == np.float32(1.5)
    np.testing.assert_array_equal(ckpt['np_array'], np.arange(4))


def test_history_buffer_pickles_without_function_references():
    buffer = HistoryBuffer([1.0, 2.0], [1, 1])
    checkpoint = dict(message_hub=dict(log_scalars=dict(loss=buffer)))
    # protocol 2 as torch.save (pickle's own default, 4+, names methods without getattr)
    data = pickle.dumps(history_buffers_without_methods(checkpoint), protocol=2)
    assert b'getattr' not in data
    restored = pickle.loads(data)['message_hub']['log_scalars']['loss']
    assert type(restored) is HistoryBuffer
    assert restored.max() == 2.0
    # mmengine's own pickling is left as it is
    assert b'getattr' in pickle.dumps(buffer, protocol=2)


def test_safety_is_kept(tmp_path):
    """Only the listed globals are allowed: a pickle calling an arbitrary function is refused."""
    assert getattr not in compat.ALLOWED_GLOBALS

    class Evil:

        def __reduce__(self):
            return (print, ('pwned', ))

    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
