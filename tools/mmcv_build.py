#!/usr/bin/env python
# Copyright (c) mmibs contributors. All rights reserved.
"""Build decisions for mmcv 2.1.0, shared by ``tools/setup_env.sh`` and
``tools/check_cuda_build.sh``.

mmcv 2.1.0 is published as a source distribution only, so every user compiles it against their
torch. Three things decide whether that build is right, and each is a function here so that it can
be tested without a GPU:

- :func:`patch_mmcv_sources`: mmcv 2.1.0's CUDA sources include ``<THC/THCAtomics.cuh>``, a header
  that torch's CPU wheels lack and its CUDA wheels keep only as a forward to
  ``<ATen/cuda/Atomic.cuh>`` (the same ``gpuAtomicAdd`` / ``atomicAdd`` overloads). The two include
  lines are replaced by the ATen header; nothing else.
- :func:`wheel_cache_key`: a compiled mmcv is only valid for the torch build, CUDA version, GPU
  architectures and Python it was compiled for, so all of them name the cached wheel.
- :func:`check_mmcv_build`: a CPU-only mmcv under a CUDA torch imports fine and fails at the first
  deformable convolution on a GPU; it is refused right after the build instead.

Command line (run with the environment's interpreter)::

    python tools/mmcv_build.py key           # the wheel cache key of this environment
    python tools/mmcv_build.py arch-list     # the TORCH_CUDA_ARCH_LIST to build with
    python tools/mmcv_build.py preflight     # refuse a CUDA build without a matching nvcc
    python tools/mmcv_build.py patch SRC     # patch an extracted mmcv 2.1.0 source tree
    python tools/mmcv_build.py check         # refuse a CPU-only mmcv under a CUDA torch

Each exits with status 2 and one line naming the problem when it refuses.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
from typing import List, Optional, Sequence

#: Bumped whenever the patch (and so the compiled code) changes; part of the cache key.
PATCH_REVISION = 1
MMCV_VERSION = '2.1.0'

#: (file under the source root, line to replace, replacement).
THC_INCLUDES = [
    ('mmcv/ops/csrc/common/pytorch_cuda_helper.hpp', '#include <THC/THCAtomics.cuh>',
     '#include <ATen/cuda/Atomic.cuh>'),
    ('mmcv/ops/csrc/pytorch/cuda/ms_deform_attn_cuda.cu', '#include <THC/THCAtomics.cuh>',
     '#include <ATen/cuda/Atomic.cuh>'),
]


class BuildError(RuntimeError):
    """A build decision that cannot be made; the message names what to change."""


def patch_mmcv_sources(src_dir: str) -> List[str]:
    """Make mmcv 2.1.0's CUDA sources compile against torch >= 2.0 (no ``THC/`` headers).

    Idempotent: an already patched tree is left as it is.

    Args:
        src_dir (str): Root of an extracted mmcv 2.1.0 source distribution (holds ``setup.py``).

    Returns:
        list[str]: The files that were changed by this call.

    Raises:
        BuildError: If ``src_dir`` is not an mmcv source tree, or a file to patch lacks both the
            original and the patched include (another mmcv version).
    """
    if not osp.isfile(osp.join(src_dir, 'setup.py')) or not osp.isdir(
            osp.join(src_dir, 'mmcv', 'ops', 'csrc')):
        raise BuildError(f'{src_dir}: not an mmcv source tree (no setup.py / mmcv/ops/csrc)')
    changed = []
    for rel_path, old, new in THC_INCLUDES:
        path = osp.join(src_dir, rel_path)
        if not osp.isfile(path):
            raise BuildError(f'{path}: missing; the patch is written for mmcv {MMCV_VERSION}')
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if old in text:
            tmp = f'{path}.mmibs-tmp'
            with open(tmp, 'w', encoding='utf-8') as f:
                f.write(text.replace(old, new))
            os.replace(tmp, path)
            changed.append(path)
        elif new not in text:
            raise BuildError(f'{path}: neither {old!r} nor {new!r} found; the patch is written '
                             f'for mmcv {MMCV_VERSION}')
    return changed


def normalize_arch_list(arch_list: str) -> str:
    """Canonical form of a ``TORCH_CUDA_ARCH_LIST`` value: sorted, ``;``-separated, no spaces.

    Args:
        arch_list (str): e.g. ``'9.0 8.0;8.6+PTX'`` (torch accepts spaces and semicolons).

    Returns:
        str: e.g. ``'8.0;8.6+PTX;9.0'``.

    Raises:
        BuildError: On an entry that is not ``MAJOR.MINOR[a|f][+PTX]``.
    """
    entries = [e for e in re.split(r'[;\s]+', arch_list.strip()) if e]
    if not entries:
        raise BuildError('TORCH_CUDA_ARCH_LIST is empty')
    for entry in entries:
        if not re.fullmatch(r'\d+\.\d+[af]?(\+PTX)?', entry):
            raise BuildError(f'TORCH_CUDA_ARCH_LIST entry {entry!r} is not of the form '
                             "MAJOR.MINOR[+PTX], e.g. '8.0;9.0'")

    def order(entry: str):
        major, minor = re.match(r'(\d+)\.(\d+)', entry).groups()
        return int(major), int(minor), entry

    return ';'.join(sorted(set(entries), key=order))


def resolve_arch_list(env_value: Optional[str],
                      device_capabilities: Sequence[Sequence[int]]) -> str:
    """The GPU architectures to compile mmcv's CUDA ops for.

    ``TORCH_CUDA_ARCH_LIST`` wins when set. Otherwise the visible GPUs decide, as torch's own
    extension builder would. Without both (a cluster login node) torch would silently compile for
    every architecture it knows, which takes hours, so the choice is left to the user.

    Args:
        env_value (str, optional): The value of ``TORCH_CUDA_ARCH_LIST``, or None when unset.
        device_capabilities (Sequence[Sequence[int]]): ``(major, minor)`` of each visible GPU.

    Returns:
        str: A normalized arch list (:func:`normalize_arch_list`).

    Raises:
        BuildError: When neither is given.
    """
    if env_value is not None and env_value.strip():
        return normalize_arch_list(env_value)
    if device_capabilities:
        return normalize_arch_list(';'.join(f'{major}.{minor}'
                                            for major, minor in device_capabilities))
    raise BuildError(
        'torch is a CUDA build but no GPU is visible and TORCH_CUDA_ARCH_LIST is not set: set it '
        'to the compute capabilities of the GPUs that will run mmibs, e.g. '
        "TORCH_CUDA_ARCH_LIST='8.0;9.0' for A100 and H100 (nvidia-smi --query-gpu=compute_cap "
        '--format=csv on a GPU node)')


def python_tag(version_info: Sequence[int] = sys.version_info) -> str:
    """``cp311`` for CPython 3.11: compiled extensions are specific to the Python minor version."""
    return f'cp{version_info[0]}{version_info[1]}'


def wheel_cache_key(torch_version: str, cuda_version: Optional[str], arch_list: Optional[str],
                    py_tag: str) -> str:
    """Name of the wheelhouse folder that holds the mmcv wheel compiled for one environment.

    Args:
        torch_version (str): ``torch.__version__``, e.g. ``'2.14.1+cu130'``.
        cuda_version (str, optional): ``torch.version.cuda`` (``'13.0'``), None for a CPU torch.
        arch_list (str, optional): The normalized arch list of a CUDA build; ignored for CPU.
        py_tag (str): :func:`python_tag` of the interpreter.

    Returns:
        str: e.g. ``'mmcv-2.1.0-p1-cp311-torch-2.13.0_cpu-cpu'`` or
        ``'mmcv-2.1.0-p1-cp311-torch-2.14.1_cu130-cuda13.0-sm8.0_9.0'``.
    """
    parts = [f'mmcv-{MMCV_VERSION}', f'p{PATCH_REVISION}', py_tag,
             'torch-' + torch_version.replace('+', '_')]
    if cuda_version:
        if not arch_list:
            raise BuildError('a CUDA build needs its arch list in the cache key')
        parts += [f'cuda{cuda_version}',
                  'sm' + normalize_arch_list(arch_list).replace(';', '_').replace('+', '-')]
    else:
        parts.append('cpu')
    return '-'.join(parts)


def check_mmcv_build(torch_cuda: Optional[str], mmcv_compiling_cuda: str,
                     has_ext: bool = True) -> str:
    """Refuse an mmcv whose compiled ops do not fit the installed torch.

    Args:
        torch_cuda (str, optional): ``torch.version.cuda``; None for a CPU torch.
        mmcv_compiling_cuda (str): ``mmcv.ops.get_compiling_cuda_version()``: the CUDA runtime
            version the ops were compiled with, ``'not available'`` for a CPU-only build.
        has_ext (bool): Whether ``mmcv._ext`` (the compiled ops) imports at all.

    Returns:
        str: A one-line description of the accepted build.

    Raises:
        BuildError: No compiled ops; a CPU-only mmcv under a CUDA torch; or another CUDA major.
    """
    if not has_ext:
        raise BuildError('mmcv has no compiled ops (mmcv._ext does not import): it was built '
                         'without MMCV_WITH_OPS=1 or without --no-build-isolation')
    compiled = None if mmcv_compiling_cuda in ('', 'not available') else mmcv_compiling_cuda
    if torch_cuda and compiled is None:
        raise BuildError(
            f'torch is a CUDA {torch_cuda} build but mmcv\'s ops were compiled without CUDA '
            '(get_compiling_cuda_version() says "not available"): DCNv2 and multi-scale '
            'deformable attention would fail on the GPU. Rebuild with FORCE_CUDA=1 and nvcc '
            f'{torch_cuda} (tools/setup_env.sh does this; docs/engine.md "GPU set-up")')
    if torch_cuda and compiled.split('.')[0] != torch_cuda.split('.')[0]:
        raise BuildError(f'mmcv\'s ops were compiled with CUDA {compiled} but torch is a CUDA '
                         f'{torch_cuda} build: rebuild mmcv with the nvcc of CUDA {torch_cuda}')
    if torch_cuda:
        return f'mmcv ops compiled with CUDA {compiled} for torch CUDA {torch_cuda}'
    return 'mmcv ops compiled for the CPU (torch is a CPU build)'


def nvcc_version(cuda_home: Optional[str]) -> Optional[str]:
    """``MAJOR.MINOR`` of ``$CUDA_HOME/bin/nvcc``, None when there is none."""
    if not cuda_home:
        return None
    nvcc = osp.join(cuda_home, 'bin', 'nvcc')
    if not osp.isfile(nvcc):
        return None
    out = subprocess.run([nvcc, '--version'], capture_output=True, text=True).stdout
    match = re.search(r'release (\d+\.\d+)', out)
    return match.group(1) if match else None


def check_nvcc(torch_cuda: str, cuda_home: Optional[str], nvcc: Optional[str]) -> str:
    """Refuse a CUDA build whose nvcc is missing or of another CUDA major than torch's.

    Args:
        torch_cuda (str): ``torch.version.cuda``.
        cuda_home (str, optional): What torch's extension builder will use
            (``torch.utils.cpp_extension.CUDA_HOME``).
        nvcc (str, optional): ``MAJOR.MINOR`` of its nvcc (:func:`nvcc_version`).

    Returns:
        str: A one-line description of the toolkit that will be used.
    """
    if nvcc is None:
        raise BuildError(
            f'torch is a CUDA {torch_cuda} build but no nvcc was found (CUDA_HOME={cuda_home}): '
            f'install the CUDA {torch_cuda} toolkit (or `pip install nvidia-cuda-nvcc=='
            f'{torch_cuda}.*`) and set CUDA_HOME to its root (docs/engine.md "GPU set-up")')
    if nvcc.split('.')[0] != torch_cuda.split('.')[0]:
        raise BuildError(f'nvcc in {cuda_home} is CUDA {nvcc} but torch is a CUDA {torch_cuda} '
                         'build: use a toolkit of the same CUDA major version (set CUDA_HOME)')
    return f'nvcc {nvcc} in {cuda_home} for torch CUDA {torch_cuda}'


#: The CUDA ops mmibs' networks need: DCNv2 (Panoptic FCN's heads) and multi-scale deformable
#: attention (Mask2Former's pixel decoder): their sources under ``mmcv/ops/csrc/pytorch`` and the
#: Python functions ``pybind.cpp`` binds for them.
NEEDED_CUDA_OPS = {
    'ModulatedDeformConv2d': dict(
        sources=['modulated_deform_conv.cpp', 'cuda/modulated_deform_conv_cuda.cu'],
        functions=['modulated_deform_conv_forward', 'modulated_deform_conv_backward']),
    'MultiScaleDeformableAttention': dict(
        sources=['ms_deform_attn.cpp', 'cuda/ms_deform_attn_cuda.cu'],
        functions=['ms_deform_attn_forward', 'ms_deform_attn_backward']),
}


def _read(path: str) -> str:
    with open(path, encoding='utf-8') as f:
        return f.read()


def _declaration(text: str, name: str, source: str) -> str:
    """The C++ declaration ``... name(...);`` in ``text`` (one of mmcv's binding files)."""
    match = re.search(r'^[\w:<>&\s]*?\b' + re.escape(name) + r'\s*\([^;{]*\)\s*;', text, re.M)
    if match is None:
        raise BuildError(f'{source}: no declaration of {name}; written for mmcv {MMCV_VERSION}')
    return match.group(0).strip()


def write_cuda_subset(src_dir: str, out_file: str) -> List[str]:
    """Write the binding file of an extension made of :data:`NEEDED_CUDA_OPS` only.

    mmcv's own build compiles all of its ~100 CUDA ops (hours on two cores); this extension
    compiles the two that mmibs needs with the same sources, registrations and Python names, so
    that a machine without a GPU can prove they compile and link against a CUDA torch. The binding
    file is assembled from mmcv's ``cuda/cudabind.cpp`` and ``pybind.cpp`` declarations.

    Args:
        src_dir (str): Root of an extracted (and patched) mmcv 2.1.0 source tree.
        out_file (str): Path of the binding ``.cpp`` to write.

    Returns:
        list[str]: The source files of the extension (binding file first).
    """
    csrc = osp.join(src_dir, 'mmcv', 'ops', 'csrc', 'pytorch')
    cudabind = _read(osp.join(csrc, 'cuda', 'cudabind.cpp'))
    pybind = _read(osp.join(csrc, 'pybind.cpp'))
    lines = ['// Generated by tools/mmcv_build.py from mmcv\'s cudabind.cpp and pybind.cpp.',
             '#include <torch/extension.h>', '#include "pytorch_cpp_helper.hpp"',
             '#include "pytorch_device_registry.hpp"', '',
             'std::string get_compiling_cuda_version();']
    sources = [out_file, osp.join(csrc, 'info.cpp')]
    defs = ['  m.def("get_compiling_cuda_version", &get_compiling_cuda_version);']
    for op in NEEDED_CUDA_OPS.values():
        sources += [osp.join(csrc, s) for s in op['sources']]
        for name in op['functions']:
            lines.append(_declaration(pybind, name, 'pybind.cpp'))
            defs.append(f'  m.def("{name}", &{name});')
    # every CUDA kernel of these ops and its registration for the CUDA device
    registrations = re.findall(r'REGISTER_DEVICE_IMPL\((\w+), CUDA,\s*(\w+)\);', cudabind)
    # the ops' device dispatchers (their .cpp files) name the implementations they call
    dispatchers = ''.join(
        _read(osp.join(csrc, s)) for op in NEEDED_CUDA_OPS.values() for s in op['sources']
        if not s.endswith('.cu'))
    wanted = [(impl, cuda) for impl, cuda in registrations
              if re.search(rf'\b{impl}\b', dispatchers)]
    if not wanted:
        raise BuildError(f'{csrc}/cuda/cudabind.cpp: no registrations for the needed ops')
    for impl, cuda in wanted:
        lines += [_declaration(cudabind, cuda, 'cudabind.cpp'),
                  _declaration(cudabind, impl, 'cudabind.cpp'),
                  f'REGISTER_DEVICE_IMPL({impl}, CUDA, {cuda});']
    lines += ['', 'PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {'] + defs + ['}', '']
    with open(out_file, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))
    return sources


def _torch_report():
    import torch
    caps = []
    if torch.version.cuda and torch.cuda.is_available():
        caps = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]
    return torch.__version__, torch.version.cuda, caps


def _arch_list_here() -> Optional[str]:
    _, cuda, caps = _torch_report()
    return resolve_arch_list(os.environ.get('TORCH_CUDA_ARCH_LIST'), caps) if cuda else None


def _compile_cuda_subset(src_dir: str, build_dir: str) -> None:
    """Compile and link :data:`NEEDED_CUDA_OPS` with torch's extension builder, then import it."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, load
    if not torch.version.cuda:
        raise BuildError(f'torch {torch.__version__} is a CPU build: install a CUDA build first')
    print(check_nvcc(torch.version.cuda, CUDA_HOME, nvcc_version(CUDA_HOME)), flush=True)
    os.makedirs(build_dir, exist_ok=True)
    sources = write_cuda_subset(src_dir, osp.join(build_dir, 'mmcv_cuda_subset_bind.cpp'))
    csrc = osp.join(src_dir, 'mmcv', 'ops', 'csrc')
    # mmcv 2.1.0's setup.py compiles with -std=c++17 for torch > 1.12.1; CHECK_CXX_STD tries another
    flags = ['-DMMCV_WITH_CUDA', '-std=' + os.environ.get('CHECK_CXX_STD', 'c++17')]
    print(f'compiling with {flags[1]} for TORCH_CUDA_ARCH_LIST='
          + os.environ.get('TORCH_CUDA_ARCH_LIST', ''),
          *[osp.relpath(s, src_dir) if s.startswith(src_dir) else s for s in sources],
          sep='\n  ', flush=True)
    module = load(
        name='mmcv_cuda_subset', sources=sources, build_directory=build_dir,
        extra_include_paths=[osp.join(csrc, 'common'), osp.join(csrc, 'common', 'cuda'),
                             osp.join(csrc, 'pytorch')],
        extra_cflags=flags, extra_cuda_cflags=flags, with_cuda=True, verbose=True)
    print(f'imported {module.__file__}: get_compiling_cuda_version() = '
          f'{module.get_compiling_cuda_version()}; functions: ' + ', '.join(
              sorted(n for n in dir(module) if not n.startswith('_'))))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('key', help='print the wheel cache key of this environment')
    sub.add_parser('arch-list', help='print the TORCH_CUDA_ARCH_LIST to build with (empty: CPU)')
    sub.add_parser('preflight', help='check nvcc against a CUDA torch before building')
    patch = sub.add_parser('patch', help='patch an extracted mmcv 2.1.0 source tree')
    patch.add_argument('src_dir')
    sub.add_parser('check', help='check the installed mmcv against the installed torch')
    subset = sub.add_parser('cuda-subset', help='compile the CUDA ops mmibs needs (no GPU needed)')
    subset.add_argument('src_dir')
    subset.add_argument('build_dir')
    args = parser.parse_args(argv)
    try:
        if args.command == 'key':
            version, cuda, _ = _torch_report()
            print(wheel_cache_key(version, cuda, _arch_list_here(), python_tag()))
        elif args.command == 'arch-list':
            print(_arch_list_here() or '')
        elif args.command == 'preflight':
            _, cuda, _ = _torch_report()
            if cuda:
                from torch.utils.cpp_extension import CUDA_HOME
                print(check_nvcc(cuda, CUDA_HOME, nvcc_version(CUDA_HOME)))
            else:
                print('CPU build of torch: mmcv is compiled with its CPU ops')
        elif args.command == 'patch':
            changed = patch_mmcv_sources(args.src_dir)
            print(f'patched {len(changed)} file(s): ' + ', '.join(
                osp.relpath(p, args.src_dir) for p in changed) if changed else 'already patched')
        elif args.command == 'check':
            import torch
            try:
                from mmcv.ops import get_compiling_cuda_version
                has_ext, compiled = True, get_compiling_cuda_version()
            except ImportError:
                has_ext, compiled = False, ''
            print(check_mmcv_build(torch.version.cuda, compiled, has_ext))
        elif args.command == 'cuda-subset':
            _compile_cuda_subset(args.src_dir, args.build_dir)
    except BuildError as error:
        print(f'[mmcv_build] error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
