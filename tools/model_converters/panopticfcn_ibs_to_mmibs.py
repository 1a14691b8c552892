# Copyright (c) mmibs contributors. All rights reserved.
"""Convert a checkpoint of the released Panoptic FCN (+ IBS) into an mmibs checkpoint.

The release (DdeGeus/PanopticFCN-IBS on detectron2) saves ``.pth`` files holding ``{'model':
state_dict, 'optimizer': ..., 'iteration': ...}``; detectron2 model-zoo files are ``.pkl`` with
``{'model': {name: numpy array}}``. Either becomes an mmengine checkpoint::

    {'state_dict': <mmibs names>, 'meta': {'dataset_meta': {...}, 'converted_from': ...}}

for :class:`mmibs.models.PanopticFCN` built from ``configs/panoptic_fcn/released/*.py``.

Every release tensor is renamed by an explicit rule (``RULES``, :func:`release_to_mmibs`);
a file with a tensor that no rule maps, or without the tensors that make a Panoptic FCN, is
refused with the offending names. One tensor is also reordered: with STUFF.ALL_CLASSES
(Cityscapes) the stuff-region output conv's row c is Cityscapes trainId c (stuff 0-10, things
11-18), while mmibs' region channel is its label, things first (0-7 things = trainIds 11-18, 8-18
stuff = trainIds 0-10), so mmibs row r = release row ``CITYSCAPES_REGION_PERM[r]``. Center
heatmap rows (thing classes) are in the same order on both sides; on Vistas (STUFF.WITH_THING:
channel 0 = any thing, 1 + s = stuff s) no row moves, assuming the release's (unshipped)
``categories_mapillary_2018.json`` lists the v1.2 categories in id order, as mmibs does. mmdet's
``BatchNorm2d`` has a ``num_batches_tracked`` buffer that detectron2's ``FrozenBatchNorm2d`` lacks;
it is written as 0 so that the state dict loads with ``strict=True``.

Usage::

    python tools/model_converters/panopticfcn_ibs_to_mmibs.py SRC.pth DST.pth [--dataset auto]

Only convert files you trust: ``.pkl`` files are unpickled (detectron2's format), ``.pth`` files
are read with ``torch.load(weights_only=True)``.
"""
import argparse
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from mmibs.utils.key_rules import Rule, rename_key

#: Cityscapes: mmibs region channel r (= label, things first) -> release channel (= trainId)
CITYSCAPES_NUM_THINGS, CITYSCAPES_NUM_STUFF = 8, 11
CITYSCAPES_REGION_PERM = ([CITYSCAPES_NUM_STUFF + r for r in range(CITYSCAPES_NUM_THINGS)] +
                          list(range(CITYSCAPES_NUM_STUFF)))
VISTAS_NUM_THINGS, VISTAS_NUM_STUFF = 37, 28

#: (center rows, region rows) of the released models -> dataset name
DATASET_BY_SHAPE = {
    (CITYSCAPES_NUM_THINGS, CITYSCAPES_NUM_THINGS + CITYSCAPES_NUM_STUFF): 'cityscapes',
    (VISTAS_NUM_THINGS, 1 + VISTAS_NUM_STUFF): 'mapillary',
}

HEAD = 'panoptic_head.head_module'
#: release tensors every Panoptic FCN checkpoint has (the file is refused without them)
SIGNATURE = ('backbone.bottom_up.stem.conv1.weight', 'semantic_fpn.p2.0.weight',
             'position_head.out_inst.weight', 'position_head.out_sem.weight',
             'kernel_head.out_conv.weight', 'thing_generator.embed_extractor.weight',
             'stuff_generator.embed_extractor.weight')
REGION_KEYS = (f'{HEAD}.position_head.out_region.weight', f'{HEAD}.position_head.out_region.bias')


_CONV_STACK_LEAF = r'(\d+)\.(weight|bias)'  # conv number (from 1) and tensor of a conv stack


def _resnet_block(m: re.Match) -> str:
    """detectron2 ``res{2..5}.{i}.{conv,shortcut}`` -> mmdet ``layer{1..4}.{i}``."""
    prefix = f'backbone.layer{int(m[1]) - 1}.{m[2]}'
    conv, norm, leaf = m[3], m[4], m[5]
    if conv == 'shortcut':
        return f'{prefix}.downsample.{1 if norm else 0}.{leaf}'
    return f'{prefix}.{"bn" if norm else "conv"}{conv[-1]}.{leaf}'


def _fpn_conv(m: re.Match) -> str:
    """Output conv of FPN level P{2..7} -> mmdet ``FPN.fpn_convs`` (4, 5 = P6, P7)."""
    return f'neck.fpn_convs.{int(m[1]) - 2}.conv.{m[2]}'


def _semantic_fpn(m: re.Match) -> Optional[str]:
    """``semantic_fpn.p{2-5}.{j}`` ([conv+GN+ReLU, Upsample] blocks; block k at j = 2k, or j = k
    at p2 which has no upsampling) -> ``ConvUpsample`` ``scale_heads.{i}.conv.{k}``."""
    level, j, leaf = int(m[1]), int(m[2]), m[3]
    if level > 2 and j % 2:
        return None  # an Upsample has no tensors
    block = j // 2 if level > 2 else j
    base = f'{HEAD}.feature_encoder.scale_heads.{level - 2}.conv.{block}'
    return f'{base}.gn.{leaf[5:]}' if leaf.startswith('norm.') else f'{base}.conv.{leaf}'


def _stack_layer(stack: str, part: str) -> Callable[[re.Match], str]:
    """Rule target for conv ``m[1]`` (numbered from 1) of an mmibs ``ConvNormReLUStack``."""
    return lambda m: f'{HEAD}.{stack}.layers.{int(m[1]) - 1}.{part}.{m[2]}'


_POSITION_CONV = r'position_head\.position_head\.position_head_head_'
_KERNEL_CONV = r'kernel_head\.kernel_head\.kernel_head_head_'

#: Release name -> mmibs name; every rule is a full match, so an unknown tensor stays unmapped.
RULES: List[Rule] = [
    # backbone: detectron2 ResNet -> mmdet ResNet
    (r'backbone\.bottom_up\.stem\.conv1\.weight', 'backbone.conv1.weight'),
    (r'backbone\.bottom_up\.stem\.conv1\.norm\.(\w+)', r'backbone.bn1.\1'),
    (r'backbone\.bottom_up\.res([2-5])\.(\d+)\.(conv[123]|shortcut)(\.norm)?\.'
     r'(weight|bias|running_mean|running_var)', _resnet_block),
    # neck: detectron2 FPN + LastLevelP6P7fromP5 -> mmdet FPN
    (r'backbone\.fpn_lateral([2-5])\.(weight|bias)',
     lambda m: f'neck.lateral_convs.{int(m[1]) - 2}.conv.{m[2]}'),
    (r'backbone\.fpn_output([2-5])\.(weight|bias)', _fpn_conv),
    (r'backbone\.top_block\.p([67])\.(weight|bias)', _fpn_conv),
    # feature encoder: semantic FPN and encode head
    (r'semantic_fpn\.p([2-5])\.(\d+)\.(weight|bias|norm\.weight|norm\.bias)', _semantic_fpn),
    (r'feature_encoder\.encode_head\.encode_head_head_' + _CONV_STACK_LEAF,
     _stack_layer('feature_encoder.encoder', 'conv')),
    # kernel head
    (_KERNEL_CONV + _CONV_STACK_LEAF, _stack_layer('kernel_head.convs', 'conv')),
    (_KERNEL_CONV + r'(\d+)\.norm\.(weight|bias)', _stack_layer('kernel_head.convs', 'gn')),
    (r'kernel_head\.out_conv\.(weight|bias)', HEAD + r'.kernel_head.out_conv.\1'),
    # position head (DCNv2: offset-mask conv, deformable conv, its norm)
    (_POSITION_CONV + r'(\d+)\.offset_mask_conv\.(weight|bias)',
     _stack_layer('position_head.convs', 'conv.conv_offset')),
    (_POSITION_CONV + r'(\d+)\.dcnv2\.(weight|bias)', _stack_layer('position_head.convs', 'conv')),
    (_POSITION_CONV + r'(\d+)\.dcnv2\.norm\.(weight|bias)',
     _stack_layer('position_head.convs', 'gn')),
    (r'position_head\.out_inst\.(weight|bias)', HEAD + r'.position_head.out_center.\1'),
    (r'position_head\.out_sem\.(weight|bias)', HEAD + r'.position_head.out_region.\1'),
    # kernel generators
    (r'(thing|stuff)_generator\.embed_extractor\.(weight|bias)', HEAD + r'.\1_embed.\2'),
]


def release_to_mmibs(key: str) -> Optional[str]:
    """The mmibs state-dict name of a release tensor, or None when no rule applies."""
    return rename_key(key, RULES)


def detect_dataset(release: Dict[str, torch.Tensor]) -> str:
    """'cityscapes' or 'mapillary' from the center / region output rows (8 / 19 or 37 / 29)."""
    shape = (len(release['position_head.out_inst.weight']),
             len(release['position_head.out_sem.weight']))
    if shape not in DATASET_BY_SHAPE:
        raise ValueError(f'center / region output rows {shape} match no released model '
                         f'({sorted(DATASET_BY_SHAPE)}: Cityscapes, Vistas); pass --dataset only '
                         'for these layouts')
    return DATASET_BY_SHAPE[shape]


def dataset_meta(dataset: str) -> dict:
    """``classes``, ``thing_classes``, ``stuff_classes``, ``palette`` of mmibs' dataset class."""
    if dataset == 'cityscapes':
        from mmibs.datasets.cityscapes_panoptic import CityscapesPanopticDataset as cls
    else:
        from mmibs.datasets.mapillary_vistas_panoptic import MapillaryVistasPanopticDataset as cls
    meta = cls.METAINFO
    return {k: list(meta[k]) for k in ('classes', 'thing_classes', 'stuff_classes', 'palette')}


def convert_state_dict(release: Dict[str, torch.Tensor],
                       dataset: str = 'auto') -> Tuple['OrderedDict[str, torch.Tensor]', str]:
    """Rename (and, on Cityscapes, reorder) a release state dict.

    Args:
        release (dict[str, Tensor]): The release's ``model`` state dict (tensors or arrays).
        dataset (str): 'auto' (from the output shapes), 'cityscapes' or 'mapillary'.

    Returns:
        tuple: The mmibs state dict and the dataset name.

    Raises:
        ValueError: If a Panoptic FCN tensor is missing, a tensor maps to no mmibs name, two map
            to the same one, or the output shapes do not fit ``dataset``.
    """
    release = {
        (k[len('module.'):] if k.startswith('module.') else k): torch.as_tensor(np.asarray(v))
        if not isinstance(v, torch.Tensor) else v
        for k, v in release.items()
    }
    missing = [k for k in SIGNATURE if k not in release]
    if missing:
        raise ValueError(f'not a Panoptic FCN checkpoint: it lacks {missing}')
    detected = detect_dataset(release)
    if dataset not in ('auto', detected):
        raise ValueError(f'--dataset {dataset} but the output shapes are those of {detected}')
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    unmapped: List[str] = []
    for key, value in release.items():
        target = release_to_mmibs(key)
        if target is None:
            unmapped.append(key)
            continue
        if target in out:
            raise ValueError(f'two release tensors map to {target} (the second: {key})')
        if detected == 'cityscapes' and target in REGION_KEYS:
            # release row = trainId, mmibs row = label (things first)
            value = value[CITYSCAPES_REGION_PERM]
        out[target] = value.detach().clone()
        if target.endswith('.running_mean'):
            out[target[:-len('running_mean')] + 'num_batches_tracked'] = torch.tensor(0)
    if unmapped:
        raise ValueError(f'{len(unmapped)} release tensors map to no mmibs tensor, e.g. '
                         f'{unmapped[:5]}; is this a Panoptic FCN checkpoint of the release?')
    return out, detected


def load_release_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """The ``model`` state dict of a detectron2 ``.pkl`` or ``.pth`` file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    if path.endswith('.pkl'):
        with open(path, 'rb') as f:
            data = pickle.load(f, encoding='latin1')
    else:
        try:
            data = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as exc:  # pickle errors come in many types
            raise ValueError(f'{path}: torch.load(weights_only=True) failed ({exc}); not a '
                             'detectron2 checkpoint of the release?') from exc
    if not isinstance(data, dict):
        raise ValueError(f'{path}: holds a {type(data).__name__}, not a dict with "model"')
    if 'model' not in data:
        hint = (' (it has "state_dict": already an mmengine checkpoint?)'
                if 'state_dict' in data else '')
        raise ValueError(f'{path}: no "model" entry, found keys {sorted(data)[:6]}{hint}')
    model = data['model']
    if not isinstance(model, dict) or not model:
        raise ValueError(f'{path}: "model" is not a non-empty state dict')
    return model


def convert(src: str, dst: str, dataset: str = 'auto') -> dict:
    """Convert ``src`` (release checkpoint) into ``dst`` (mmengine checkpoint), atomically.

    Returns:
        dict: The written checkpoint.
    """
    from mmibs.utils.atomic_io import atomic_open

    state_dict, detected = convert_state_dict(load_release_checkpoint(src), dataset)
    checkpoint = dict(
        state_dict=state_dict,
        meta=dict(
            dataset_meta=dataset_meta(detected),
            converted_from=osp.basename(src),
            converter='tools/model_converters/panopticfcn_ibs_to_mmibs.py'))
    with atomic_open(dst, 'wb') as f:
        torch.save(checkpoint, f)
    return checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a released Panoptic FCN (+ IBS) detectron2 checkpoint to mmibs.')
    parser.add_argument('src', help='release checkpoint (.pth with "model", or .pkl)')
    parser.add_argument('dst', help='output mmengine checkpoint (.pth)')
    parser.add_argument(
        '--dataset',
        default='auto',
        choices=['auto', 'cityscapes', 'mapillary'],
        help='dataset of the checkpoint (class order); auto: from the output shapes')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        checkpoint = convert(args.src, args.dst, args.dataset)
    except (ValueError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    meta = checkpoint['meta']['dataset_meta']
    print(f'wrote {args.dst}: {len(checkpoint["state_dict"])} tensors, '
          f'{len(meta["thing_classes"])} things + {len(meta["stuff_classes"])} stuff classes')
    return 0


if __name__ == '__main__':
    sys.exit(main())
