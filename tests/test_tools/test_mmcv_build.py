# Copyright (c) mmibs contributors. All rights reserved.
"""tools/mmcv_build.py: the mmcv wheel cache key, the arch list, the source patch and the refusal of
an mmcv whose ops do not fit torch, all with fake torch / mmcv reports (no GPU, no CUDA torch)."""
import importlib.util
import os.path as osp
import sys
import types

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'mmcv_build.py')


@pytest.fixture(scope='module')
def mb():
    spec = importlib.util.spec_from_file_location('mmcv_build_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cache_key_names_everything_the_build_depends_on(mb):
    cpu = mb.wheel_cache_key('2.13.0+cpu', None, None, 'cp311')
    assert cpu == f'mmcv-2.1.0-p{mb.PATCH_REVISION}-cp311-torch-2.13.0_cpu-cpu'
    cuda = mb.wheel_cache_key('2.13.0+cu130', '13.0', '9.0;8.0', 'cp311')
    assert cuda == f'mmcv-2.1.0-p{mb.PATCH_REVISION}-cp311-torch-2.13.0_cu130-cuda13.0-sm8.0_9.0'
    keys = {
        cpu, cuda,
        mb.wheel_cache_key('2.13.0+cu130', '13.0', '9.0', 'cp311'),  # other architectures
        mb.wheel_cache_key('2.13.0+cu130', '13.0', '8.0;9.0+PTX', 'cp311'),
        mb.wheel_cache_key('2.13.0+cu130', '13.0', '8.0;9.0', 'cp312'),  # other Python
        mb.wheel_cache_key('2.13.0+cu126', '12.6', '8.0;9.0', 'cp311'),  # other CUDA
        mb.wheel_cache_key('2.14.1+cu130', '13.0', '8.0;9.0', 'cp311'),  # other torch
    }
    assert len(keys) == 7
    # the same architectures written another way are the same build
    assert mb.wheel_cache_key('2.13.0', '13.0', ' 9.0 8.0;9.0', 'cp311') == \
        mb.wheel_cache_key('2.13.0', '13.0', '8.0;9.0', 'cp311')
    with pytest.raises(mb.BuildError, match='arch list'):
        mb.wheel_cache_key('2.13.0+cu130', '13.0', None, 'cp311')


def test_python_tag(mb):
    assert mb.python_tag((3, 11, 7)) == 'cp311'
    assert mb.python_tag((3, 12, 0)) == 'cp312'


def test_arch_list_from_env_then_devices_else_refused(mb):
    assert mb.resolve_arch_list('9.0;8.0', [(8, 6)]) == '8.0;9.0'  # the variable wins
    assert mb.resolve_arch_list(None, [(9, 0), (8, 0), (9, 0)]) == '8.0;9.0'
    assert mb.resolve_arch_list('  ', [(8, 6)]) == '8.6'
    assert mb.normalize_arch_list('8.6+PTX 7.5;10.0') == '7.5;8.6+PTX;10.0'
    with pytest.raises(mb.BuildError, match='TORCH_CUDA_ARCH_LIST.*compute capabilities'):
        mb.resolve_arch_list(None, [])  # a login node: no GPU, no list
    with pytest.raises(mb.BuildError, match="entry 'sm_90'"):
        mb.normalize_arch_list('8.0;sm_90')


@pytest.mark.parametrize('torch_cuda,compiled,has_ext,error', [
    (None, 'not available', True, None),
    ('13.0', '13.0', True, None),
    ('12.6', '12.8', True, None),  # same major: the runtime is compatible
    ('13.0', 'not available', True, 'compiled without CUDA'),
    ('13.0', '12.8', True, 'compiled with CUDA 12.8 but torch is a CUDA 13.0'),
    (None, 'not available', False, 'no compiled ops'),
    ('13.0', '', False, 'no compiled ops'),
])
def test_check_mmcv_build(mb, torch_cuda, compiled, has_ext, error):
    if error is None:
        assert 'mmcv ops compiled' in mb.check_mmcv_build(torch_cuda, compiled, has_ext)
    else:
        with pytest.raises(mb.BuildError, match=error):
            mb.check_mmcv_build(torch_cuda, compiled, has_ext)


def test_check_nvcc(mb):
    assert 'nvcc 13.0' in mb.check_nvcc('13.0', '/opt/cuda', '13.0')
    with pytest.raises(mb.BuildError, match='no nvcc was found'):
        mb.check_nvcc('13.0', None, None)
    with pytest.raises(mb.BuildError, match='nvcc in /opt/cuda is CUDA 12.8'):
        mb.check_nvcc('13.0', '/opt/cuda', '12.8')


def _fake_report(monkeypatch, torch_cuda, compiled):
    """Make `import torch` and `from mmcv.ops import get_compiling_cuda_version` return fakes."""
    torch = types.ModuleType('torch')
    torch.__version__ = '2.13.0+cu130' if torch_cuda else '2.13.0+cpu'
    torch.version = types.SimpleNamespace(cuda=torch_cuda)
    torch.cuda = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0)
    mmcv = types.ModuleType('mmcv')
    ops = types.ModuleType('mmcv.ops')
    ops.get_compiling_cuda_version = lambda: compiled
    mmcv.ops = ops
    monkeypatch.setitem(sys.modules, 'torch', torch)
    monkeypatch.setitem(sys.modules, 'mmcv', mmcv)
    monkeypatch.setitem(sys.modules, 'mmcv.ops', ops)


def test_cli_refuses_cpu_only_mmcv_under_cuda_torch(mb, monkeypatch, capsys):
    _fake_report(monkeypatch, '13.0', 'not available')
    assert mb.main(['check']) == 2
    err = capsys.readouterr().err
    assert err.startswith('[mmcv_build] error: torch is a CUDA 13.0 build')
    assert 'FORCE_CUDA=1' in err
    _fake_report(monkeypatch, '13.0', '13.0')
    assert mb.main(['check']) == 0
    assert 'compiled with CUDA 13.0' in capsys.readouterr().out


def test_cli_key_and_arch_list_from_fake_torch(mb, monkeypatch, capsys):
    _fake_report(monkeypatch, None, 'not available')
    monkeypatch.delenv('TORCH_CUDA_ARCH_LIST', raising=False)
    assert mb.main(['key']) == 0
    assert capsys.readouterr().out.strip().endswith('-cp%d%d-torch-2.13.0_cpu-cpu' %
                                                    sys.version_info[:2])
    _fake_report(monkeypatch, '13.0', '13.0')
    assert mb.main(['key']) == 2  # no GPU visible and no list: refused, not built for every arch
    assert 'TORCH_CUDA_ARCH_LIST' in capsys.readouterr().err
    monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', '9.0 8.0')
    assert mb.main(['arch-list']) == 0
    assert capsys.readouterr().out.strip() == '8.0;9.0'
    assert mb.main(['key']) == 0
    assert capsys.readouterr().out.strip().endswith('-torch-2.13.0_cu130-cuda13.0-sm8.0_9.0')


def _fake_mmcv_tree(root, include='#include <THC/THCAtomics.cuh>'):
    files = {}
    for rel_path, _, _ in [('mmcv/ops/csrc/common/pytorch_cuda_helper.hpp', 0, 0),
                           ('mmcv/ops/csrc/pytorch/cuda/ms_deform_attn_cuda.cu', 0, 0)]:
        path = root / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'#pragma once\n{include}\nint x;\n')
        files[rel_path] = path
    (root / 'setup.py').write_text('')
    return files


def test_patch_replaces_the_thc_includes_only(mb, tmp_path):
    files = _fake_mmcv_tree(tmp_path)
    changed = mb.patch_mmcv_sources(str(tmp_path))
    assert sorted(changed) == sorted(str(p) for p in files.values())
    for path in files.values():
        assert path.read_text() == '#pragma once\n#include <ATen/cuda/Atomic.cuh>\nint x;\n'
    assert mb.patch_mmcv_sources(str(tmp_path)) == []  # idempotent
    assert not list(tmp_path.rglob('*.mmibs-tmp'))


def test_patch_refuses_other_sources(mb, tmp_path):
    with pytest.raises(mb.BuildError, match='not an mmcv source tree'):
        mb.patch_mmcv_sources(str(tmp_path))
    _fake_mmcv_tree(tmp_path, include='#include <something/else.h>')
    with pytest.raises(mb.BuildError, match='neither'):
        mb.patch_mmcv_sources(str(tmp_path))


def test_installed_mmcv_passes_the_check(mb):
    """The environment the suite runs in: a CPU torch and mmcv compiled with its CPU ops."""
    import torch
    from mmcv.ops import get_compiling_cuda_version
    message = mb.check_mmcv_build(torch.version.cuda, get_compiling_cuda_version())
    assert 'mmcv ops compiled' in message
