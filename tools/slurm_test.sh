#!/usr/bin/env bash
# Evaluation on a slurm cluster.
#   GPUS=8 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# GPUS_PER_NODE / CPUS_PER_TASK / SRUN_ARGS size the job (tools/launch.sh).
exec bash "$(dirname "$0")/launch.sh" slurm "$1" "$2" test.py "$3" "$4" "${@:5}"
