# Copyright (c) mmibs contributors. All rights reserved.
"""Convert a checkpoint of the released Panoptic FCN (+ IBS) into an mmibs checkpoint.

The release (DdeGeus/PanopticFCN-IBS on detectron2) saves ``.pth`` files holding ``{'model':
state_dict, 'optimizer': ..., 'iteration': ...}``; detectron2 model-zoo files are ``.pkl`` with
``{'model': {name: numpy array}}``. Either becomes an mmengine checkpoint::

    {'state_dict': <mmibs names>, 'meta': {'dataset_meta': {...}, 'converted_from': ...}}

for :class:`mmibs.models.PanopticFCN` built from ``configs/panoptic_fcn/released/*.py``.

Every release tensor is renamed by an explicit rule (module by module, :func:`release_to_mmibs`);
a file with a tensor that no rule maps, or without the tensors that make a Panoptic FCN, is
refused with the offending names. One tensor is also reordered: with STUFF.ALL_CLASSES
(Cityscapes) the stuff-region output conv's row c is Cityscapes trainId c (stuff 0-10, things
11-18), while mmibs' region channel is its label, things first (0-7 things = trainIds 11-18, 8-18
stuff = trainIds 0-10), so mmibs row r = release row ``CITYSCAPES_REGION_PERM[r]``. Center
heatmap rows (thing classes) are in the same order on both sides; on Vistas (STUFF.WITH_THING:
channel 0 = any thing, 1 + s = stuff s) no row moves, assuming the release's (unshipped)
``categories_mapillary_2018.json`` lists the v1.2 categories in id order, as mmibs does. mmdet's ``BatchNorm2d`` has a ``num_batches_tracked`` buffer that detectron2's
``FrozenBatchNorm2d`` lacks; it is written as 0 so that the state dict loads with ``strict=True``.

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
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

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


def _resnet(key: str) -> Optional[str]:
    """detectron2 ResNet (``backbone.bottom_up``) -> mmdet ``ResNet``."""
    m = re.fullmatch(r'backbone\.bottom_up\.stem\.conv1\.(weight|norm\.\w+)', key)
    if m:
        leaf = m[1]
        return f'backbone.bn1.{leaf[5:]}' if leaf.startswith('norm.') else 'backbone.conv1.weight'
    m = re.fullmatch(
        r'backbone\.bottom_up\.res([2-5])\.(\d+)\.(conv[123]|shortcut)(\.norm)?\.'
        r'(weight|bias|running_mean|running_var)', key)
    if not m:
        return None
    prefix = f'backbone.layer{int(m[1]) - 1}.{m[2]}'
    conv, norm, leaf = m[3], m[4], m[5]
    if conv == 'shortcut':
        return f'{prefix}.downsample.{1 if norm else 0}.{leaf}'
    return f'{prefix}.{"bn" if norm else "conv"}{conv[-1]}.{leaf}'


def _fpn(key: str) -> Optional[str]:
    """detectron2 FPN + ``LastLevelP6P7fromP5`` -> mmdet ``FPN`` (``fpn_convs`` 4, 5 = P6, P7)."""
    m = re.fullmatch(r'backbone\.fpn_(lateral|output)([2-5])\.(weight|bias)', key)
    if m:
        kind = 'lateral_convs' if m[1] == 'lateral' else 'fpn_convs'
        return f'neck.{kind}.{int(m[2]) - 2}.conv.{m[3]}'
    m = re.fullmatch(r'backbone\.top_block\.p([67])\.(weight|bias)', key)
    if m:
        return f'neck.fpn_convs.{int(m[1]) - 2}.conv.{m[2]}'
    return None


def _semantic_fpn(key: str) -> Optional[str]:
    """``semantic_fpn.p{2-5}.{j}`` ([conv+GN+ReLU, Upsample] blocks; block k at j = 2k, or j = k
    at p2 which has no upsampling) -> ``ConvUpsample`` ``scale_heads.{i}.conv.{k}``."""
    m = re.fullmatch(r'semantic_fpn\.p([2-5])\.(\d+)\.(weight|bias|norm\.weight|norm\.bias)', key)
    if not m:
        return None
    level, j, leaf = int(m[1]), int(m[2]), m[3]
    if level > 2 and j % 2:
        return None  # an Upsample has no tensors
    block = j // 2 if level > 2 else j
    base = f'{HEAD}.feature_encoder.scale_heads.{level - 2}.conv.{block}'
    return f'{base}.gn.{leaf[5:]}' if leaf.startswith('norm.') else f'{base}.conv.{leaf}'


def _heads(key: str) -> Optional[str]:
    """Feature encoder, kernel head, position head (DCNv2) and the two kernel generators."""
    m = re.fullmatch(r'feature_encoder\.encode_head\.encode_head_head_(\d+)\.(weight|bias)', key)
    if m:
        return f'{HEAD}.feature_encoder.encoder.layers.{int(m[1]) - 1}.conv.{m[2]}'
    m = re.fullmatch(r'kernel_head\.kernel_head\.kernel_head_head_(\d+)\.(weight|bias|norm\.weight|'
                     r'norm\.bias)', key)
    if m:
        base = f'{HEAD}.kernel_head.convs.layers.{int(m[1]) - 1}'
        leaf = m[2]
        return f'{base}.gn.{leaf[5:]}' if leaf.startswith('norm.') else f'{base}.conv.{leaf}'
    m = re.fullmatch(r'kernel_head\.out_conv\.(weight|bias)', key)
    if m:
        return f'{HEAD}.kernel_head.out_conv.{m[1]}'
    m = re.fullmatch(r'position_head\.position_head\.position_head_head_(\d+)\.'
                     r'(offset_mask_conv\.weight|offset_mask_conv\.bias|dcnv2\.weight|dcnv2\.bias|'
                     r'dcnv2\.norm\.weight|dcnv2\.norm\.bias)', key)
    if m:
        base = f'{HEAD}.position_head.convs.layers.{int(m[1]) - 1}'
        leaf = m[2]
        if leaf.startswith('offset_mask_conv.'):
            return f'{base}.conv.conv_offset.{leaf.rsplit(".", 1)[1]}'
        if leaf.startswith('dcnv2.norm.'):
            return f'{base}.gn.{leaf.rsplit(".", 1)[1]}'
        return f'{base}.conv.{leaf.rsplit(".", 1)[1]}'
    m = re.fullmatch(r'position_head\.out_(inst|sem)\.(weight|bias)', key)
    if m:
        return f'{HEAD}.position_head.{"out_center" if m[1] == "inst" else "out_region"}.{m[2]}'
    m = re.fullmatch(r'(thing|stuff)_generator\.embed_extractor\.(weight|bias)', key)
    if m:
        return f'{HEAD}.{m[1]}_embed.{m[2]}'
    return None


def release_to_mmibs(key: str) -> Optional[str]:
    """The mmibs state-dict name of a release tensor, or None when no rule applies."""
    for rule in (_resnet, _fpn, _semantic_fpn, _heads):
        out = rule(key)
        if out is not None:
            return out
    return None


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
