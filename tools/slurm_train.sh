#!/usr/bin/env bash
# Training on a slurm cluster.
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# GPUS_PER_NODE / CPUS_PER_TASK / SRUN_ARGS size the job (tools/launch.sh).
exec bash "$(dirname "$0")/launch.sh" slurm "$1" "$2" train.py "$3" --work-dir="$4" "${@:5}"
