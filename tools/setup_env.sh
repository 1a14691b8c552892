#!/usr/bin/env bash
# Create (or bring up to date) the project-local environment `.venv` with the pinned OpenMMLab stack
# and an editable install of mmibs. Idempotent: a run on an up-to-date environment returns in seconds,
# and a fresh clone on a machine that built mmcv once re-uses the compiled wheel.
#
#   bash tools/setup_env.sh            # or: make env
#
# Environment variables:
#   MMIBS_VENV        where the environment lives (default: <repo>/.venv)
#   MMIBS_PYTHON      interpreter that creates it (default: python3.11, else python3)
#   MMIBS_WHEELHOUSE  where the compiled mmcv wheel is kept (default: ~/.cache/mmibs/wheels); the
#                     wheel is keyed by what it was compiled for (Python, torch build, CUDA version,
#                     GPU architectures, mmibs' source patch: tools/mmcv_build.py key), so a changed
#                     environment never picks up an ABI-incompatible mmcv.
#   TORCH_CUDA_ARCH_LIST  GPU architectures of a CUDA build (default: those of the visible GPUs;
#                     required where none is visible, e.g. '8.0;9.0')
#   MAX_JOBS          parallel compile jobs for mmcv (default: number of cores)
#
# GPU users: install a CUDA build of torch into the environment first, and have nvcc of the same
# CUDA version (CUDA_HOME); this script keeps any torch it finds and compiles mmcv's CUDA ops
# against it with FORCE_CUDA=1. Line by line: docs/engine.md, "GPU set-up".
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MMIBS_VENV:-$repo/.venv}"
wheelhouse="${MMIBS_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmibs/wheels}"
py_bin="${MMIBS_PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp="$venv/.mmibs-env-stamp"
log() { printf '[setup_env] %s\n' "$*"; }

# Everything that decides the environment's content; a change re-runs the install steps.
want_stamp="$(cat "$repo"/requirements/*.txt "$repo/setup.py" "$repo/setup.cfg" "${BASH_SOURCE[0]}" \
  "$repo/tools/mmcv_build.py" \
  | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]] \
  && "$venv/bin/python" - "$repo" <<'PY' 2>/dev/null; then
import sys, os, importlib.util
import mmcv, mmcv._ext  # noqa: F401  compiled ops present
spec = importlib.util.find_spec('mmibs')
assert spec is not None and os.path.dirname(os.path.dirname(spec.origin)) == sys.argv[1]
PY
  log "environment $venv is up to date"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv with $py_bin ($("$py_bin" --version))"
  "$py_bin" -m venv "$venv"
fi
vpy="$venv/bin/python"
pip=("$vpy" -m pip --disable-pip-version-check)

# uv installs from its cache by linking, so a fresh clone's environment takes seconds, not minutes
# (pip unpacks torch alone in ~40 s). It is pinned and lives in the environment itself.
"${pip[@]}" install -q uv==0.9.5
# uv does not read pip's configuration: hand it pip's extra wheel directories (find-links).
links="$("${pip[@]}" config get global.find-links 2>/dev/null || true)"
links="${PIP_FIND_LINKS:-$links}"
uv=("$venv/bin/uv" pip install -q --python "$vpy")
for d in $links; do [[ -d "$d" ]] && uv+=(--find-links "$d"); done

log "build tools"
"${uv[@]}" -r "$repo/requirements/build.txt"

if "$vpy" -c 'import torch' 2>/dev/null; then
  log "keeping installed torch $("$vpy" -c 'import torch; print(torch.__version__)')"
else
  log "installing torch (requirements/torch.txt)"
  "${uv[@]}" -r "$repo/requirements/torch.txt" -r "$repo/requirements/build.txt"
fi

# mmcv 2.1.0 is source-only on PyPI. Without --no-build-isolation its setup.py cannot see torch and
# silently builds *without* ops, so it is compiled here, once per environment, into the wheelhouse.
# tools/mmcv_build.py makes the decisions: the cache key (mmcv patch revision, Python tag, torch
# build, CUDA version, GPU architectures), the arch list, the nvcc check and the source patch.
build=("$vpy" "$repo/tools/mmcv_build.py")
torch_cuda="$("$vpy" -c 'import torch; print(torch.version.cuda or "")')"
if [[ -n "$torch_cuda" ]]; then
  # A CUDA torch: compile the CUDA ops even where no GPU is visible (a cluster login node).
  export FORCE_CUDA=1
  TORCH_CUDA_ARCH_LIST="$("${build[@]}" arch-list)"
  export TORCH_CUDA_ARCH_LIST
  "${build[@]}" preflight
fi
mmcv_dir="$wheelhouse/$("${build[@]}" key)"
if ! ls "$mmcv_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  log "compiling mmcv 2.1.0 with ops (torch CUDA: ${torch_cuda:-none}, arch list:" \
    "${TORCH_CUDA_ARCH_LIST:-CPU}) into $mmcv_dir (about 12 minutes on 2 cores for the CPU ops)"
  mkdir -p "$mmcv_dir"
  tmp="$(mktemp -d "$mmcv_dir/.build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  "${pip[@]}" download -q --no-deps --no-build-isolation --no-binary :all: -d "$tmp" mmcv==2.1.0
  tar -xzf "$tmp/mmcv-2.1.0.tar.gz" -C "$tmp"
  "${build[@]}" patch "$tmp/mmcv-2.1.0"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${pip[@]}" wheel --no-build-isolation --no-deps \
    --no-cache-dir -w "$tmp/dist" "$tmp/mmcv-2.1.0"
  mmcv_whl="$(ls "$tmp"/dist/mmcv-2.1.0-*.whl | head -n 1)"
else
  mmcv_whl="$(ls "$mmcv_dir"/mmcv-2.1.0-*.whl | head -n 1)"
fi

log "OpenMMLab stack (mmcv from $mmcv_whl) and runtime requirements"
"${uv[@]}" "$mmcv_whl" -r "$repo/requirements/build.txt" -r "$repo/requirements/mminstall.txt" \
  -r "$repo/requirements/runtime.txt" -r "$repo/requirements/optional.txt" \
  -r "$repo/requirements/mim.txt" -r "$repo/requirements/tests.txt"
"${uv[@]}" --no-deps -r "$repo/requirements/nodeps.txt"
# A CPU-only mmcv under a CUDA torch (or no ops at all) is refused here, before it is cached.
"${build[@]}" check
if [[ "$mmcv_whl" == "${tmp:-/nonexistent}"/* ]]; then
  mv "$mmcv_whl" "$mmcv_dir"/  # only complete, checked wheels enter the cache
  rm -rf "$tmp"
  trap - EXIT
fi

# Legacy develop install (egg-link whose location is the repo root): openmim 0.3.9 finds the
# package root, and so tools/ and configs/, only through it (a PEP 660 editable install hides them).
log "editable install of mmibs"
(cd "$repo" && "${pip[@]}" install -q --no-build-isolation --no-use-pep517 --no-deps -e .)

"$vpy" - <<'PY'
import mmcv, mmcv._ext, mmengine, mmdet, mmseg, torch, panopticapi, mim  # noqa: F401
import mmibs
print(f'[setup_env] ok: torch {torch.__version__}, mmcv {mmcv.__version__} (ops), '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, '
      f'mmibs {mmibs.__version__}')
PY
echo "$want_stamp" > "$stamp"
