#!/usr/bin/env bash
# The launcher behind dist_train.sh, dist_test.sh, slurm_train.sh and slurm_test.sh: runs a tool
# of this folder in several processes, through torchrun or slurm's srun.
#   bash tools/launch.sh torchrun NPROC TOOL [TOOL args...]
#       NNODES / NODE_RANK / PORT / MASTER_ADDR select multi-node jobs, as in mmdet.
#   bash tools/launch.sh slurm PARTITION JOB_NAME TOOL [TOOL args...]
#       GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5) and SRUN_ARGS size the job.
# TOOL is a file name in tools/ (train.py, test.py); the tool gets the matching --launcher.
set -eu
tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="$tools/..${PYTHONPATH:+:$PYTHONPATH}"

mode=${1:?usage: launch.sh torchrun NPROC TOOL ... | launch.sh slurm PARTITION JOB_NAME TOOL ...}
case "$mode" in
  torchrun)
    nproc=$2 tool=$3
    shift 3
    exec python -m torch.distributed.run \
      --nnodes="${NNODES:-1}" \
      --node_rank="${NODE_RANK:-0}" \
      --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --nproc_per_node="$nproc" \
      --master_port="${PORT:-29500}" \
      "$tools/$tool" "$@" --launcher pytorch
    ;;
  slurm)
    partition=$2 job_name=$3 tool=$4
    shift 4
    gpus_per_node=${GPUS_PER_NODE:-8}
    set -x
    # SRUN_ARGS holds several srun options: split on spaces
    # shellcheck disable=SC2086
    exec srun -p "$partition" \
      --job-name="$job_name" \
      --gres=gpu:"$gpus_per_node" \
      --ntasks="${GPUS:-8}" \
      --ntasks-per-node="$gpus_per_node" \
      --cpus-per-task="${CPUS_PER_TASK:-5}" \
      --kill-on-bad-exit=1 \
      ${SRUN_ARGS:-} \
      python -u "$tools/$tool" "$@" --launcher=slurm
    ;;
  *)
    echo "launch.sh: the first argument must be 'torchrun' or 'slurm', got '$mode'" >&2
    exit 2
    ;;
esac
