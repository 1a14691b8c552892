# Copyright (c) mmibs contributors. All rights reserved.
"""Train a model with the MMEngine runner (mmdet's tools/train.py, with mmibs imported first).

Importing mmibs before the config is read registers its modules (the runner a config names with
``runner_type``, e.g. ``SafeCheckpointRunner``) and lets torch's safe loader read mmengine
checkpoints, which ``--resume`` and ``load_from`` need on torch >= 2.6. With ``--launcher`` on a
machine without GPU the processes train on the CPU with the gloo backend, and ``--amp`` uses
bfloat16 CPU autocast (:mod:`mmibs.engine.runner_setup`).
"""
import argparse

import mmibs  # noqa: F401  (registers mmibs modules, allow-lists mmengine checkpoint contents)
from mmibs.engine.runner_setup import (add_runner_args, build_runner, load_tool_config,
                                       parse_runner_args, select_amp_optim_wrapper,
                                       setup_tool_process)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not specify, try to auto '
        'resume from the latest checkpoint in the work directory.')
    return parse_runner_args(add_runner_args(parser))


def main():
    args = parse_args()
    setup_tool_process()
    cfg = load_tool_config(args)
    select_amp_optim_wrapper(cfg, args.amp)

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

    build_runner(cfg).train()


if __name__ == '__main__':
    main()
