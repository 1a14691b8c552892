#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU, with the gloo backend) training through torchrun.
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# NNODES / NODE_RANK / PORT / MASTER_ADDR select multi-node jobs, as in mmdet (tools/launch.sh).
exec bash "$(dirname "$0")/launch.sh" torchrun "$2" train.py "$1" "${@:3}"
