# Copyright (c) mmibs contributors. All rights reserved.
"""Print the parameter count of a config's model: total, trainable, and mmengine's per-module table.

The model is built on the CPU without loading any pretrained weights (every ``init_cfg`` is
left alone but ``init_weights`` is not called), so it works offline.

Examples::

    python tools/analysis_tools/count_params.py configs/_base_/models/panoptic-fcn_r50_fpn.py
    python tools/analysis_tools/count_params.py CONFIG --depth 2 \\
        --cfg-options model.panoptic_head.head_module.feature_encoder.out_channels=64
"""
import argparse
from collections import OrderedDict
from typing import Dict, Optional, Sequence

from mmengine.analysis import parameter_count, parameter_count_table
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from torch import nn

import mmibs  # noqa: F401  (registers mmibs modules)
from mmibs.registry import MODELS


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Count the parameters of a config\'s model.')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--depth',
        type=int,
        default=1,
        help='module depth of the breakdown: 1 = top-level modules (backbone, neck, ...), '
        '2 = their children, ... (default: 1)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value (as tools/train.py)')
    return parser.parse_args(argv)


def count_parameters(model: nn.Module, depth: int = 1) -> Dict[str, int]:
    """Parameter counts of a model, from mmengine's :func:`parameter_count`.

    Args:
        model (nn.Module): The model.
        depth (int): Depth of the per-module breakdown: each parameter is counted under its
            module name cut to ``depth`` dotted parts. Defaults to 1.

    Returns:
        dict[str, int]: ``total``, ``trainable`` and one entry per module prefix, in model order.
    """
    if depth < 1:
        raise ValueError(f'count_parameters: depth must be >= 1, got {depth}')
    # parameter_count: '' -> whole model, and every module / parameter name -> its count
    per_name = parameter_count(model)
    counts = OrderedDict(
        total=per_name[''],
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad))
    for name, param in model.named_parameters():
        parts = name.split('.')[:-1]  # drop the parameter's own name
        if not parts:  # a parameter of the model itself, not of a submodule
            counts['(root)'] = counts.get('(root)', 0) + param.numel()
            continue
        prefix = '.'.join(parts[:depth])
        counts.setdefault(prefix, per_name[prefix])
    return counts


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in the config's default scope (mmdet unless set)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, int]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg)
    counts = count_parameters(model, args.depth)
    print(f'Parameters of {cfg.model.get("type")} ({args.config}): {counts["total"]:,d} in '
          f'total, {counts["trainable"]:,d} trainable')
    print(parameter_count_table(model, max_depth=args.depth))
    return counts


if __name__ == '__main__':
    main()
