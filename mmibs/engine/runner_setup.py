# Copyright (c) mmibs contributors. All rights reserved.
"""From a command line to a runner: what ``tools/train.py`` and ``tools/test.py`` share.

Both follow mmdet's tools: the same options (``--work-dir``, ``--cfg-options``, ``--launcher``,
``--local-rank``), the same config handling, and the runner the config names with
``runner_type`` (``SafeCheckpointRunner`` in mmibs' configs). mmibs adds CPU-only multi-process
runs (:func:`~mmibs.engine.setup_cpu_distributed`) and mixed precision without a GPU
(:func:`select_amp_optim_wrapper`).
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

from .cpu_dist import accelerator_available, setup_cpu_distributed

__all__ = [
    'add_runner_args', 'build_runner', 'load_tool_config', 'parse_runner_args',
    'select_amp_optim_wrapper', 'setup_tool_process'
]


def add_runner_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options both tools take: ``--work-dir``, ``--cfg-options``, ``--launcher`` and
    ``--local-rank``.

    Args:
        parser (ArgumentParser): The tool's parser, with its positional arguments.

    Returns:
        ArgumentParser: ``parser``.
    """
    parser.add_argument('--work-dir', help='the folder for logs, checkpoints and metrics')
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
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_runner_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line; set ``LOCAL_RANK`` from ``--local-rank`` where the launcher did
    not (mmengine reads the environment variable).

    Args:
        parser (ArgumentParser): A parser that went through :func:`add_runner_args`.

    Returns:
        Namespace: The parsed arguments.
    """
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_tool_process() -> None:
    """Process-wide settings of the tools (not of library code: they change every later
    computation of the process).

    On CPUs, float32 denormals (tiny activations and gradients late in training) run through a
    slow microcode path; flushing them to zero changes nothing measurable in the results. mmdet's
    ``setup_cache_size_limit_of_dynamo`` reduces repeated compilations.
    """
    torch.set_flush_denormal(True)
    setup_cache_size_limit_of_dynamo()


def load_tool_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the common options.

    The launcher and ``--cfg-options`` are applied; ``work_dir`` is ``--work-dir``, else the
    config's, else ``./work_dirs/<config name>``.

    Args:
        args (Namespace): Parsed arguments with ``config``, ``launcher``, ``cfg_options`` and
            ``work_dir``.

    Returns:
        Config: The config.
    """
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def select_amp_optim_wrapper(cfg: Config, amp: bool = False) -> None:
    """Choose the mixed-precision optimizer wrapper for this machine (``cfg`` changed in place).

    ``amp=True`` (``--amp``) turns an ``OptimWrapper`` into mmengine's ``AmpOptimWrapper``
    (dynamic loss scale). ``AmpOptimWrapper`` asserts a GPU/NPU/MLU/MUSA device; without one, an
    ``AmpOptimWrapper`` (asked for by ``--amp`` or named by the config, as the released
    Mask2Former recipes do) becomes :class:`~mmibs.engine.CPUAmpOptimWrapper` (bfloat16 CPU
    autocast, no loss scaling), with a warning.

    Args:
        cfg (Config): The full config.
        amp (bool): Whether mixed precision was asked for. Defaults to False.
    """
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if amp:
        if wrapper == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        else:
            assert wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {wrapper}.')
            cfg.optim_wrapper.type = wrapper = 'AmpOptimWrapper'
            if accelerator_available():
                cfg.optim_wrapper.loss_scale = 'dynamic'
    if wrapper == 'AmpOptimWrapper' and not accelerator_available():
        print_log(
            'AmpOptimWrapper needs a GPU/NPU/MLU/MUSA; none is available, so '
            'CPUAmpOptimWrapper (bfloat16 autocast, no loss scaling) is used.',
            logger='current',
            level=logging.WARNING)
        cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'


def build_runner(cfg: Config) -> Runner:
    """Build the runner ``cfg`` names (``runner_type``), or mmengine's ``Runner``.

    With a launcher and no accelerator, the CPU process group is started first and DDP set up
    without ``device_ids`` (:func:`~mmibs.engine.setup_cpu_distributed`).

    Args:
        cfg (Config): The full config (``cfg.launcher`` set).

    Returns:
        Runner: The runner, not yet started.
    """
    setup_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
