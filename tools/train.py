# Copyright (c) mmibs contributors. All rights reserved.
"""Train a model with the MMEngine runner (mmdet's tools/train.py, with mmibs imported first).

Importing mmibs before the config is read registers its modules (the runner a config names with
``runner_type``, e.g. ``SafeCheckpointRunner``) and lets torch's safe loader read mmengine
checkpoints (:mod:`mmibs.utils.compat`), which ``--resume`` and ``load_from`` need on torch >= 2.6.
With ``--launcher`` on a machine without GPU the processes train on the CPU with the gloo backend
(:func:`mmibs.engine.setup_cpu_distributed`).
"""
import argparse
import logging
import os
import os.path as osp

import torch

from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmibs  # noqa: F401  (registers mmibs modules, allow-lists mmengine checkpoint contents)
from mmibs.engine import accelerator_available, setup_cpu_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', default=False, help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not specify, try to auto '
        'resume from the latest checkpoint in the work directory.')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair in xxx=yyy format '
        'will be merged into config file. If the value to be overwritten is a list, it should be '
        'like key="[a,b]" or key=a,b It also allows nested list/tuple values, e.g. '
        'key="[(a,b),(c,d)]" Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # When using PyTorch version >= 2.0.0, the `torch.distributed.launch`
    # will pass the `--local-rank` parameter to `tools/train.py` instead
    # of `--local_rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()

    # On CPUs, float32 denormals (tiny activations and gradients late in training) run through a
    # slow microcode path; flushing them to zero changes nothing measurable in the results.
    torch.set_flush_denormal(True)

    # Reduce the number of repeated compilations and improve training speed.
    setup_cache_size_limit_of_dynamo()

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    # enable automatic-mixed-precision training
    if args.amp is True:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            # mmengine's AmpOptimWrapper asserts one of GPU/NPU/MLU/MUSA
            if accelerator_available():
                cfg.optim_wrapper.type = 'AmpOptimWrapper'
                cfg.optim_wrapper.loss_scale = 'dynamic'
            else:
                # mmengine's AmpOptimWrapper refuses to run without a GPU/NPU/MLU/MUSA: use
                # bfloat16 CPU autocast instead (mmibs.engine.optim.CPUAmpOptimWrapper)
                cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
                cfg.optim_wrapper.dtype = 'bfloat16'

    # Configs that train with AMP as released (AmpOptimWrapper) still start without a GPU: mmengine's
    # wrapper asserts an accelerator, so such a run uses bfloat16 CPU autocast instead.
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper' and not accelerator_available():
        print_log(
            'The config trains with AmpOptimWrapper, which needs a GPU/NPU/MLU/MUSA; none is '
            'available, so CPUAmpOptimWrapper (bfloat16 autocast, no loss scaling) is used.',
            logger='current',
            level=logging.WARNING)
        cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'

    # enable automatically scaling LR
    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and \
                'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or "auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your configuration file.')

    # resume is determined in this priority: resume from > auto_resume
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # CPU-only multi-process training: gloo process group, DDP without device_ids
    setup_cpu_distributed(cfg)

    # build the runner from config
    if 'runner_type' not in cfg:
        # build the default runner
        runner = Runner.from_cfg(cfg)
    else:
        # build customized runner from the registry
        # if 'runner_type' is set in the cfg
        runner = RUNNERS.build(cfg)

    # start training
    runner.train()


if __name__ == '__main__':
    main()
