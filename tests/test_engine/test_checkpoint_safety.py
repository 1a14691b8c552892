# Copyright (c) mmibs contributors. All rights reserved.
"""Atomic checkpoint writes and the architecture check of SafeCheckpointRunner and its parts
(mmibs.engine.checkpoint_safety, AtomicCheckpointHook)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
from collections import deque
from types import SimpleNamespace

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from torch import nn

from mmibs.engine import AtomicCheckpointHook, SafeCheckpointRunner
from mmibs.engine.checkpoint_safety import atomic_open, check_checkpoint_fits_model


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
        # the file backend SafeCheckpointRunner.save_checkpoint selects for local paths
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

    def forward(self, *args, **kwargs):
        return dict()


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


def test_runner_saves_checkpoints_atomically(tmp_path, monkeypatch):
    """SafeCheckpointRunner.save_checkpoint replaces a local file only once it is complete."""
    runner = _runner(
        tmp_path,
        'save_check',
        train_dataloader=torch.utils.data.DataLoader([0]),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)))
    out_dir = str(tmp_path / 'ckpts')
    os.makedirs(out_dir)
    path = osp.join(out_dir, 'iter_1.pth')
    with open(path, 'wb') as f:
        f.write(b'old')
    with monkeypatch.context() as patch:
        patch.setattr(os, 'fsync', _interrupted_fsync)
        with pytest.raises(KeyboardInterrupt):
            runner.save_checkpoint(
                out_dir,
                'iter_1.pth',
                by_epoch=False,
                save_optimizer=False,
                save_param_scheduler=False)
    assert os.listdir(out_dir) == ['iter_1.pth']
    with open(path, 'rb') as f:
        assert f.read() == b'old'
    runner.save_checkpoint(
        out_dir, 'iter_1.pth', by_epoch=False, save_optimizer=False, save_param_scheduler=False)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert ckpt['state_dict'].keys() == _Wrapped().state_dict().keys()


def test_runner_builds_atomic_checkpoint_hook_for_checkpoint_hook(tmp_path):
    runner = _runner(
        tmp_path,
        'hook_swap',
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=3)))
    hooks = [h for h in runner.hooks if type(h).__name__.endswith('CheckpointHook')]
    assert [type(h) for h in hooks] == [AtomicCheckpointHook]
    assert hooks[0].interval == 3
