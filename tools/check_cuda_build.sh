#!/usr/bin/env bash
# Prove that mmcv 2.1.0's CUDA ops compile against a CUDA build of torch, on a machine without a
# GPU (compiling needs nvcc, not a GPU). Not part of `make test`: it installs a CUDA torch and the
# CUDA compiler into a scratch environment (about 6 GB).
#
#   bash tools/check_cuda_build.sh [--full] [WORKDIR]
#
# What it does, each step timed:
#   1. a scratch venv in WORKDIR (default ${TMPDIR:-/tmp}/mmibs-cuda-check) with $CHECK_TORCH
#      and nvcc of torch's CUDA version from PyPI
#      (nvidia-cuda-nvcc, -crt, -cccl, nvvm), used through CUDA_HOME: no system toolkit needed;
#   2. mmcv 2.1.0's sources, patched by tools/mmcv_build.py (THC include -> ATen);
#   3. by default: compile, link and import the CUDA ops mmibs needs, ModulatedDeformConv2d (DCNv2,
#      Panoptic FCN) and MultiScaleDeformableAttention (Mask2Former), from mmcv's own sources;
#      with --full: mmcv's whole build with FORCE_CUDA=1 (every op; hours on 2 cores), then
#      tools/mmcv_build.py check on the installed wheel.
#
# Environment: CHECK_TORCH (pip requirement of the CUDA torch; default the pinned torch 2.13.0's
# PyPI build, CUDA 13.0: '!=2.13.0+cpu' keeps pip from taking a local CPU wheel of that version),
# CHECK_CXX_STD (default c++17, what mmcv 2.1.0's setup.py uses), TORCH_CUDA_ARCH_LIST (default
# 9.0), MAX_JOBS (default: number of cores).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
full=0
if [[ "${1:-}" == "--full" ]]; then full=1; shift; fi
work="${1:-${TMPDIR:-/tmp}/mmibs-cuda-check}"
torch_req="${CHECK_TORCH:-torch==2.13.0,!=2.13.0+cpu}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
py_bin="${MMIBS_PYTHON:-$(command -v python3.11 || command -v python3)}"
log() { printf '[check_cuda_build] %s\n' "$*"; }
t0=$SECONDS
step() { log "$1 done in $((SECONDS - t_step)) s"; }

mkdir -p "$work"
venv="$work/venv"
vpy="$venv/bin/python"
pip=("$vpy" -m pip --disable-pip-version-check -q)

t_step=$SECONDS
[[ -x "$vpy" ]] || "$py_bin" -m venv "$venv"
log "installing $torch_req (a CUDA build) into $venv"
"${pip[@]}" install "$torch_req" numpy ninja==1.13.0 "setuptools<80" wheel
cuda="$("$vpy" -c 'import torch; print(torch.version.cuda or "")' 2>/dev/null)"
if [[ -z "$cuda" ]]; then
  log "error: $torch_req installed a CPU build of torch; set CHECK_TORCH to a CUDA build"
  exit 2
fi
log "installing nvcc for CUDA $cuda from PyPI"
"${pip[@]}" install "nvidia-cuda-nvcc==$cuda.*" "nvidia-cuda-crt==$cuda.*" \
  "nvidia-cuda-cccl==$cuda.*" "nvidia-nvvm==$cuda.*"
CUDA_HOME="$("$vpy" - <<'PY'
import glob, os.path as osp, nvidia
roots = [osp.dirname(osp.dirname(p)) for base in nvidia.__path__
         for p in glob.glob(osp.join(base, '*', 'bin', 'nvcc'))]
print(roots[0] if roots else '')
PY
)"
export CUDA_HOME
export PATH="$CUDA_HOME/bin:$PATH"
# The runtime wheel ships libcudart.so.N only; the linker's -lcudart needs the unversioned name.
for lib in "$CUDA_HOME"/lib/libcudart.so.*; do
  [[ -e "$CUDA_HOME/lib/libcudart.so" ]] || ln -s "$(basename "$lib")" "$CUDA_HOME/lib/libcudart.so"
done
step "environment"
"$vpy" -c 'import torch; print(f"[check_cuda_build] torch {torch.__version__} (CUDA {torch.version.cuda}), '\
'GPU visible: {torch.cuda.is_available()}")' 2>/dev/null
"$CUDA_HOME/bin/nvcc" --version | tail -n 2
"$vpy" "$repo/tools/mmcv_build.py" preflight

t_step=$SECONDS
src="$work/mmcv-2.1.0"
if [[ ! -d "$src" ]]; then
  "${pip[@]}" download --no-deps --no-build-isolation --no-binary :all: -d "$work" mmcv==2.1.0
  tar -xzf "$work/mmcv-2.1.0.tar.gz" -C "$work"
fi
"$vpy" "$repo/tools/mmcv_build.py" patch "$src"
step "mmcv 2.1.0 sources"

t_step=$SECONDS
if (( full )); then
  log "mmcv's whole build, FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, MAX_JOBS=$MAX_JOBS"
  FORCE_CUDA=1 MMCV_WITH_OPS=1 "${pip[@]}" wheel --no-build-isolation --no-deps -w "$work/dist" "$src"
  "${pip[@]}" install --no-deps "$work"/dist/mmcv-2.1.0-*.whl mmengine==0.10.7
  "$vpy" "$repo/tools/mmcv_build.py" check
  step "mmcv build"
else
  log "compiling the CUDA ops mmibs needs, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, MAX_JOBS=$MAX_JOBS"
  "$vpy" "$repo/tools/mmcv_build.py" cuda-subset "$src" "$work/subset-build"
  step "CUDA ops build"
fi
log "ok: mmcv 2.1.0 CUDA ops compiled against $torch_req (CUDA $cuda) in $((SECONDS - t0)) s"
