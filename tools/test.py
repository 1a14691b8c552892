# Copyright (c) mmibs contributors. All rights reserved.
"""Evaluate a checkpoint with the MMEngine runner (mmdet's tools/test.py, mmibs imported first).

The runner is the one the config names with ``runner_type`` (``SafeCheckpointRunner`` in mmibs'
configs: it refuses a checkpoint of another architecture). With ``--launcher`` on a machine
without GPU the processes run on the CPU with the gloo backend
(:mod:`mmibs.engine.runner_setup`). mmdet's ``--tta`` is not offered: its ``DetTTAModel`` merges
boxes and cannot produce a panoptic result.
"""
import argparse

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults

import mmibs  # noqa: F401  (registers mmibs modules, allow-lists mmengine checkpoint contents)
from mmibs.engine.runner_setup import (add_runner_args, build_runner, load_tool_config,
                                       parse_runner_args, setup_tool_process)


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, it will be '
        'automatically saved to the work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    return parse_runner_args(add_runner_args(parser))


def main():
    args = parse_args()
    setup_tool_process()
    cfg = load_tool_config(args)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    runner = build_runner(cfg)

    # add `DumpResults` dummy metric
    if args.out is not None:
        assert args.out.endswith(('.pkl', '.pickle')), \
            'The dump file must be a pkl file.'
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))

    runner.test()


if __name__ == '__main__':
    main()
