# Copyright (c) mmibs contributors. All rights reserved.
"""mmibs.engine.checkpoint_safety: atomic checkpoint writes and the architecture check."""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import mmibs  # noqa: F401  (applies the patches)
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


def test_last_checkpoint_pointer_is_written_atomically(tmp_path):
    """mmengine's CheckpointHook writes ``last_checkpoint`` with the module's ``open``."""
    from mmengine.hooks import checkpoint_hook
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text('/w/iter_2.pth')
    with pytest.raises(KeyboardInterrupt):
        with checkpoint_hook.open(str(pointer), 'w') as f:
            f.write('/w/iter_4')
            raise KeyboardInterrupt
    assert pointer.read_text() == '/w/iter_2.pth'
    with checkpoint_hook.open(str(pointer), 'w') as f:
        f.write('/w/iter_4.pth')
    assert pointer.read_text() == '/w/iter_4.pth'


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
        save_checkpoint(dict(state_dict=dict(w=torch.ones(100000))), {path!r})
    """)
    proc = subprocess.Popen([sys.executable, '-c', script],
                            stdout=subprocess.PIPE,
                            text=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    try:
        lines = iter(proc.stdout.readline, '')  # mmengine may log a deprecation warning first
        assert 'writing' in (line.strip() for line in lines)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
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


def test_runner_load_checkpoint_names_the_file(tmp_path):
    from mmengine.runner import Runner
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=_OtherNet().state_dict()), path)

    class _Model(_Net):

        def forward(self, *args, **kwargs):
            return dict()

    from mmengine.model import BaseModel

    class _Wrapped(BaseModel):

        def __init__(self):
            super().__init__()
            self.net = _Model()

        def forward(self, *args, **kwargs):
            return dict()

    runner = Runner(
        model=_Wrapped(),
        work_dir=str(tmp_path / 'w'),
        default_scope='mmdet',
        experiment_name='load_check')
    with pytest.raises(RuntimeError, match=f'^{path}: does not fit the model _Wrapped'):
        runner.load_checkpoint(path)
    assert osp.basename(path) == 'other.pth'
