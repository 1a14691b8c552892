# Copyright (c) mmibs contributors. All rights reserved.
"""mmibs.engine.checkpoint: checkpoints torch's default loader reads, the architecture check on
load (SafeCheckpointRunner, the default runner) and atomic writes (AtomicCheckpointHook, opt-in)."""
import itertools
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import textwrap
from collections import deque
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from mmibs.engine import (AtomicCheckpointHook, SafeCheckpointRunner, check_checkpoint_fits_model,
                          history_buffers_without_methods)
from mmibs.engine import checkpoint as checkpoint_module
from mmibs.utils.atomic_io import atomic_open


# ----------------------------------------------------------------------------------------------
# safe loading
def _mmengine_like_checkpoint():
    hub = MessageHub.get_instance('test_checkpoint_safe_loading')
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


def test_checkpoint_loads_with_torch_defaults(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    ckpt = torch.load(path, map_location='cpu')  # torch's default: weights_only=True
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
    assert checkpoint_module.ALLOWED_GLOBALS  # import mmibs (conftest) ran the allow-listing
    assert getattr not in checkpoint_module.ALLOWED_GLOBALS

    class Evil:

        def __reduce__(self):
            return (print, ('pwned', ))

    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


@pytest.mark.parametrize('runner_cls', [Runner, SafeCheckpointRunner])
def test_only_the_safe_runner_writes_checkpoints_torch_load_reads(tmp_path, runner_cls):
    """Why SafeCheckpointRunner is the default: a plain mmengine Runner's checkpoint (after a
    training iteration, so the message hub holds history buffers) is refused by ``torch.load``
    with its defaults, on ``getattr``."""
    runner = runner_cls(
        model=_Wrapped(),
        work_dir=str(tmp_path / 'w'),
        experiment_name=f'default_load_{next(_NAMES)}',
        **_TRAIN,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1)),
        default_scope='mmdet')
    runner.train()
    path = str(tmp_path / 'w' / 'iter_1.pth')
    if runner_cls is Runner:
        with pytest.raises(pickle.UnpicklingError, match='getattr'):
            torch.load(path, map_location='cpu')
    else:
        ckpt = torch.load(path, map_location='cpu')
        assert ckpt['meta']['iter'] == 1
        assert ckpt['message_hub']['log_scalars']  # the buffers are there, loaded safely


# ----------------------------------------------------------------------------------------------
# atomic writes (AtomicCheckpointHook)


def test_atomic_open_keeps_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / 'ckpt.pth'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError, match='disk full'):
        with atomic_open(str(path), 'wb') as f:
            f.write(b'new, but only part')
            raise RuntimeError('disk full')
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['ckpt.pth']  # the temporary file is gone
    with atomic_open(str(path), 'wb') as f:
        f.write(b'new')
    assert path.read_bytes() == b'new'
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _interrupted_fsync(fd):
    """``os.fsync`` interrupted: the bytes are in the temporary file, the rename has not run."""
    raise KeyboardInterrupt


def _hook_and_runner(work_dir: str, max_keep_ckpts: int = -1):
    """An AtomicCheckpointHook as ``before_train`` leaves it, and the runner parts it uses."""
    hook = AtomicCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=max_keep_ckpts)
    hook.out_dir = work_dir
    hook.file_backend = get_file_backend(work_dir)
    hook.keep_ckpt_ids = deque(maxlen=max(max_keep_ckpts, 0) or None)
    saved = []

    def save_checkpoint(out_dir, filename, *args, **kwargs):
        saved.append(filename)
        assert kwargs['backend_args'] == dict(backend='atomic_local')
        with open(osp.join(out_dir, filename), 'wb') as f:
            f.write(b'ckpt')

    runner = SimpleNamespace(
        work_dir=work_dir,
        message_hub=MessageHub.get_instance(f'atomic_hook_{work_dir}'),
        save_checkpoint=save_checkpoint)
    return hook, runner, saved


def test_last_checkpoint_pointer_is_written_atomically(tmp_path, monkeypatch):
    """AtomicCheckpointHook writes ``last_checkpoint`` atomically (mmengine's writes in place)."""
    hook, runner, saved = _hook_and_runner(str(tmp_path))
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text('/w/iter_2.pth')
    with monkeypatch.context() as patch:
        patch.setattr(os, 'fsync', _interrupted_fsync)
        with pytest.raises(KeyboardInterrupt):
            hook._save_checkpoint_with_step(runner, 4, meta=dict())
    assert saved == ['iter_4.pth']
    assert pointer.read_text() == '/w/iter_2.pth'
    assert sorted(os.listdir(tmp_path)) == ['iter_4.pth', 'last_checkpoint']  # no temporary file
    hook._save_checkpoint_with_step(runner, 4, meta=dict())
    assert pointer.read_text() == osp.join(str(tmp_path), 'iter_4.pth')


def test_oldest_checkpoint_is_removed_after_the_new_one_is_written(tmp_path, monkeypatch):
    """With max_keep_ckpts, an interruption while saving leaves the pointed-at checkpoint."""
    hook, runner, _ = _hook_and_runner(str(tmp_path), max_keep_ckpts=1)
    hook._save_checkpoint_with_step(runner, 2, meta=dict())
    hook._save_checkpoint_with_step(runner, 4, meta=dict())
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) == ['iter_4.pth']
    assert runner.message_hub.get_info('keep_ckpt_ids') == [4]
    with monkeypatch.context() as patch:
        patch.setattr(os, 'fsync', _interrupted_fsync)
        with pytest.raises(KeyboardInterrupt):
            hook._save_checkpoint_with_step(runner, 6, meta=dict())
    pointed = (tmp_path / 'last_checkpoint').read_text()
    assert osp.basename(pointed) == 'iter_4.pth' and osp.isfile(pointed)


def test_checkpoint_killed_while_being_written_leaves_the_old_one(tmp_path):
    """SIGKILL while mmengine's ``save_checkpoint`` writes: the old checkpoint stays whole."""
    path = str(tmp_path / 'iter_2.pth')
    torch.save(dict(state_dict=dict(w=torch.zeros(3))), path)
    script = textwrap.dedent(f"""
        import os, sys, time
        import torch
        import mmibs
        from mmengine.runner.checkpoint import save_checkpoint
        def stalled_fsync(fd):  # the bytes are in the temporary file: stop before the rename
            print('writing', flush=True)
            time.sleep(120)
        os.fsync = stalled_fsync
        # the file backend AtomicCheckpointHook selects for local folders
        save_checkpoint(dict(state_dict=dict(w=torch.ones(100000))), {path!r},
                        backend_args=dict(backend='atomic_local'))
    """)
    proc = subprocess.Popen([sys.executable, '-c', script],
                            stdout=subprocess.PIPE,
                            text=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    try:
        lines = iter(proc.stdout.readline, '')  # mmengine may log a deprecation warning first
        assert 'writing' in (line.strip() for line in lines)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    torch.testing.assert_close(ckpt['state_dict']['w'], torch.zeros(3))
    # what the killed process left is a hidden temporary file, never the checkpoint's name
    leftovers = [n for n in os.listdir(tmp_path) if n != 'iter_2.pth']
    assert all(n.startswith('.iter_2.pth.') and n.endswith('.tmp') for n in leftovers), leftovers


class _Net(nn.Module):

    def __init__(self, head_out: int = 4) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3))
        self.head = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, head_out))


class _OtherNet(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(5, 5)
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3))


def test_checkpoint_of_another_architecture_is_refused():
    checkpoint = dict(state_dict=_OtherNet().state_dict())
    with pytest.raises(RuntimeError) as err:
        check_checkpoint_fits_model(_Net(), checkpoint, source='/ckpts/other.pth')
    message = str(err.value)
    assert message.startswith('/ckpts/other.pth: does not fit the model _Net')
    # 2 convs x (weight, bias) + BN's 5 entries + the head's 4
    assert '0 of its 13 parameters/buffers' in message
    assert 'too few of backbone (0 of 9), head (0 of 4)' in message
    assert 'backbone.1.weight' in message  # a missing key
    assert 'encoder.weight' in message  # an unexpected key
    assert 'backbone.0.weight (4, 3, 3, 3) vs (8, 3, 3, 3)' in message  # a shape mismatch


def test_checkpoint_with_a_changed_head_loads():
    """A partial fit (another number of classes) keeps mmengine's warnings, no error."""
    state = {f'module.{k}': v for k, v in _Net(head_out=7).state_dict().items()}
    check_checkpoint_fits_model(_Net(), dict(state_dict=state))  # 'module.' is stripped
    with pytest.raises(RuntimeError, match=r'11 of its 13 .*too few of head \(2 of 4\)'):
        check_checkpoint_fits_model(_Net(), dict(state_dict=state), min_fraction=0.9)


def test_checkpoint_sharing_only_the_backbone_is_refused():
    """Most entries by count match (the backbone), but the head is another one entirely."""
    state = _Net().state_dict()
    state = {k: v for k, v in state.items() if k.startswith('backbone.')}
    state['head.weight'] = torch.zeros(3, 3)
    with pytest.raises(RuntimeError, match=r'9 of its 13 .*too few of head \(0 of 4\)'):
        check_checkpoint_fits_model(_Net(), dict(state_dict=state), source='x.pth')


class _Wrapped(BaseModel):

    def __init__(self):
        super().__init__()
        self.net = _Net()

    def forward(self, x, mode: str = 'loss'):
        # a loss that reaches one parameter, enough for a training step
        return dict(loss=(self.net.head[1].bias * torch.stack(x).mean()).sum())


#: What the runners in these tests train on (the loss above reads ``x``).
_TRAIN = dict(
    train_dataloader=dict(
        dataset=[dict(x=torch.ones(1)), dict(x=torch.zeros(1))],
        sampler=dict(type='InfiniteSampler'),
        batch_size=1,
        num_workers=0),
    train_cfg=dict(by_epoch=False, max_iters=1),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)))
_NAMES = itertools.count()


def _runner(tmp_path, name: str, **kwargs) -> SafeCheckpointRunner:
    return SafeCheckpointRunner(
        model=_Wrapped(),
        work_dir=str(tmp_path / 'w'),
        default_scope='mmdet',
        experiment_name=name,
        **kwargs)


def test_runner_load_checkpoint_names_the_file(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=_OtherNet().state_dict()), path)
    runner = _runner(tmp_path, 'load_check')
    with pytest.raises(RuntimeError, match=f'^{path}: does not fit the model _Wrapped'):
        runner.load_checkpoint(path)
    assert osp.basename(path) == 'other.pth'
    # a checkpoint of the same model loads
    fitting = str(tmp_path / 'same.pth')
    torch.save(dict(state_dict=_Wrapped().state_dict()), fitting)
    runner.load_checkpoint(fitting)


def test_hook_saves_checkpoints_atomically(tmp_path, monkeypatch):
    """AtomicCheckpointHook in a real runner: an interrupted save leaves the old file as it was;
    a completed one replaces it with a checkpoint torch's default loader reads."""
    work_dir = tmp_path / 'w'
    work_dir.mkdir()
    path = work_dir / 'iter_1.pth'
    path.write_bytes(b'old')

    def train():
        _runner(
            tmp_path,
            f'atomic_hook_{next(_NAMES)}',
            **_TRAIN,
            default_hooks=dict(
                checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=1))).train()

    with monkeypatch.context() as patch:
        patch.setattr(os, 'fsync', _interrupted_fsync)
        with pytest.raises(KeyboardInterrupt):
            train()
    assert path.read_bytes() == b'old'
    assert not [n for n in os.listdir(work_dir) if n.endswith('.tmp')]
    train()
    ckpt = torch.load(path, map_location='cpu')
    assert ckpt['state_dict'].keys() == _Wrapped().state_dict().keys()
    assert (work_dir / 'last_checkpoint').read_text() == str(path)
