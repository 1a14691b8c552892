#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU, with the gloo backend) evaluation through torchrun.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# NNODES / NODE_RANK / PORT / MASTER_ADDR select multi-node jobs, as in mmdet (tools/launch.sh).
exec bash "$(dirname "$0")/launch.sh" torchrun "$3" test.py "$1" "$2" "${@:4}"
