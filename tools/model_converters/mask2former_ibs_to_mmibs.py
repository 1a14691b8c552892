# Copyright (c) mmibs contributors. All rights reserved.
"""Convert a Mask2Former(-IBS) checkpoint of the authors' detectron2 release into an mmibs one.

The release (DdeGeus/Mask2Former-IBS, built on facebookresearch/Mask2Former) saves detectron2
checkpoints (``model_final.pth``: ``{'model': state_dict, 'iteration': ..., ...}``). This tool
renames every tensor to mmdet's ``Mask2Former`` (ResNet, ``MSDeformAttnPixelDecoder``,
``Mask2FormerTransformerDecoder``), reorders the rows of the class head from the release's
contiguous ids to mmibs' things-first labels, checks that the result fills the model of an mmibs
config exactly (every key, every shape), and writes an mmengine checkpoint with
``meta.dataset_meta``::

    python tools/model_converters/mask2former_ibs_to_mmibs.py model_final.pth m2f_ibs_cs.pth
    python tools/test.py \\
        configs/mask2former/released/mask2former_r50_release_cityscapes-panoptic.py \\
        m2f_ibs_cs.pth

Class order. The release's class ``c`` is its contiguous id: the Cityscapes trainId (road ...
sky, then person ... bicycle; detectron2 ``CITYSCAPES_CATEGORIES``) or the Vistas v1.2 category
id minus one (``register_mapillary_vistas_panoptic.py``, things and stuff interleaved). mmibs
labels list the things first (``CityscapesPanopticDataset`` / ``MapillaryVistasPanopticDataset``
``METAINFO``). The class head has ``num_classes + 1`` rows with the no-object row last on both
sides, so mmibs row ``r`` is release row ``perm[r]`` with ``perm[-1] = num_classes``. A Vistas
*instance* checkpoint (37 rows + no object) is taken to list the things in category-id order,
which is mmibs' ``MapillaryVistasInstanceDataset`` order (the release ships no instance config).

Which dataset: from the class head's rows (20: Cityscapes, 66: Vistas panoptic, 38: Vistas
instance) unless ``--dataset`` says it. Which model: the config of the released checkpoint of
that dataset (``configs/mask2former/released/``) unless ``--config`` names another one (e.g. a
small test model). A checkpoint that is not a Mask2Former, whose backbone is not the config's
ResNet depth (ResNet-50 for the released configs), or that leaves any tensor of the model
unfilled or any of its own tensors unused, is refused with the list of offending names.

Dropped on purpose: ``criterion.empty_weight`` (a loss buffer; mmibs keeps the no-object weight
as ``loss_cls.class_weight``; it is checked against the config) and the non-persistent
``pixel_mean`` / ``pixel_std`` if an old checkpoint has them (checked against the config's
data preprocessor). FrozenBN checkpoints (the Vistas recipe) have no ``num_batches_tracked``;
it is set to 0 (mmdet's BN in eval mode does not read it).

Loading uses ``torch.load(weights_only=True)``; checkpoints that need full unpickling (objects
besides tensors and plain containers, or detectron2 ``.pkl`` files) are loaded only with
``--unsafe-load``, for files you trust. The output is written to a temporary file and renamed.
"""
import argparse
import hashlib
import os.path as osp
import pickle
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmibs.utils.key_rules import Rule, rename_key

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: Class names in the release's contiguous-id order, per dataset (checked against the mmibs
#: dataset's ``METAINFO`` by name, so a wrong entry is refused, never silently mapped).
CITYSCAPES_RELEASE_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                              'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
                              'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
                              'bicycle')
VISTAS_RELEASE_CLASSES = (
    'Bird', 'Ground Animal', 'Curb', 'Fence', 'Guard Rail', 'Barrier', 'Wall', 'Bike Lane',
    'Crosswalk - Plain', 'Curb Cut', 'Parking', 'Pedestrian Area', 'Rail Track', 'Road',
    'Service Lane', 'Sidewalk', 'Bridge', 'Building', 'Tunnel', 'Person', 'Bicyclist',
    'Motorcyclist', 'Other Rider', 'Lane Marking - Crosswalk', 'Lane Marking - General',
    'Mountain', 'Sand', 'Sky', 'Snow', 'Terrain', 'Vegetation', 'Water', 'Banner', 'Bench',
    'Bike Rack', 'Billboard', 'Catch Basin', 'CCTV Camera', 'Fire Hydrant', 'Junction Box',
    'Mailbox', 'Manhole', 'Phone Booth', 'Pothole', 'Street Light', 'Pole', 'Traffic Sign Frame',
    'Utility Pole', 'Traffic Light', 'Traffic Sign (Back)', 'Traffic Sign (Front)', 'Trash Can',
    'Bicycle', 'Boat', 'Bus', 'Car', 'Caravan', 'Motorcycle', 'On Rails', 'Other Vehicle',
    'Trailer', 'Truck', 'Wheeled Slow', 'Car Mount', 'Ego Vehicle')
#: The 37 Vistas v1.2 thing classes in category-id order (an instance checkpoint's classes).
VISTAS_RELEASE_THING_CLASSES = tuple(
    n for n in VISTAS_RELEASE_CLASSES if n not in {
        'Curb', 'Fence', 'Guard Rail', 'Barrier', 'Wall', 'Bike Lane', 'Curb Cut', 'Parking',
        'Pedestrian Area', 'Rail Track', 'Road', 'Service Lane', 'Sidewalk', 'Bridge',
        'Building', 'Tunnel', 'Lane Marking - General', 'Mountain', 'Sand', 'Sky', 'Snow',
        'Terrain', 'Vegetation', 'Water', 'Pothole', 'On Rails', 'Car Mount', 'Ego Vehicle'
    })

#: dataset -> (release class order, mmibs dataset type, default config of the released model)
DATASETS_INFO = {
    'cityscapes': (CITYSCAPES_RELEASE_CLASSES, 'CityscapesPanopticDataset',
                   'configs/mask2former/released/mask2former_r50_release_cityscapes-panoptic.py'),
    'mapillary': (VISTAS_RELEASE_CLASSES, 'MapillaryVistasPanopticDataset',
                  'configs/mask2former/released/mask2former_r50_release_mapillary-panoptic.py'),
    'mapillary-instance': (VISTAS_RELEASE_THING_CLASSES, 'MapillaryVistasInstanceDataset',
                           'configs/mask2former/released/'
                           'mask2former_r50_release_mapillary-instance.py'),
}

CLASS_HEAD = 'sem_seg_head.predictor.class_embed.'
#: ResNet depth -> (blocks per stage res2..res5, bottleneck blocks)
RESNET_LAYOUTS = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}
#: Release tensors that have no mmibs counterpart and are checked or dropped by design.
DROPPED = ('criterion.empty_weight', 'pixel_mean', 'pixel_std')

_P = 'sem_seg_head.pixel_decoder.'
_D = 'sem_seg_head.predictor.'
_ENC = _P + r'transformer\.encoder\.layers\.(\d+)\.'


def _stage(m: re.Match) -> str:
    """detectron2 ``res{2..5}`` -> mmdet ``layer{1..4}``."""
    return f'backbone.layer{int(m[1]) - 1}.{m[2]}'


#: Release name -> mmibs name; every rule is a full match, so an unknown tensor stays unmapped.
RULES: List[Rule] = [
    # backbone: detectron2 ResNet -> mmdet ResNet (bottleneck or basic blocks)
    (r'backbone\.stem\.conv1\.weight', 'backbone.conv1.weight'),
    (r'backbone\.stem\.conv1\.norm\.(\w+)', r'backbone.bn1.\1'),
    (r'backbone\.res(\d)\.(\d+)\.conv([123])\.weight', lambda m: f'{_stage(m)}.conv{m[3]}.weight'),
    (r'backbone\.res(\d)\.(\d+)\.conv([123])\.norm\.(\w+)',
     lambda m: f'{_stage(m)}.bn{m[3]}.{m[4]}'),
    (r'backbone\.res(\d)\.(\d+)\.shortcut\.weight', lambda m: f'{_stage(m)}.downsample.0.weight'),
    (r'backbone\.res(\d)\.(\d+)\.shortcut\.norm\.(\w+)',
     lambda m: f'{_stage(m)}.downsample.1.{m[3]}'),
    # pixel decoder: input projections (index 0 = the coarsest level on both sides)
    (_P + r'input_proj\.(\d)\.0\.(\w+)', r'panoptic_head.pixel_decoder.input_convs.\1.conv.\2'),
    (_P + r'input_proj\.(\d)\.1\.(\w+)', r'panoptic_head.pixel_decoder.input_convs.\1.gn.\2'),
    (_P + r'transformer\.level_embed', 'panoptic_head.pixel_decoder.level_encoding.weight'),
    (_ENC + r'self_attn\.(\w+)\.(\w+)',
     r'panoptic_head.pixel_decoder.encoder.layers.\1.self_attn.\2.\3'),
    (_ENC + r'norm1\.(\w+)', r'panoptic_head.pixel_decoder.encoder.layers.\1.norms.0.\2'),
    (_ENC + r'norm2\.(\w+)', r'panoptic_head.pixel_decoder.encoder.layers.\1.norms.1.\2'),
    (_ENC + r'linear1\.(\w+)', r'panoptic_head.pixel_decoder.encoder.layers.\1.ffn.layers.0.0.\2'),
    (_ENC + r'linear2\.(\w+)', r'panoptic_head.pixel_decoder.encoder.layers.\1.ffn.layers.1.\2'),
    (_P + r'mask_features\.(\w+)', r'panoptic_head.pixel_decoder.mask_feature.\1'),
    (_P + r'adapter_1\.weight', 'panoptic_head.pixel_decoder.lateral_convs.0.conv.weight'),
    (_P + r'adapter_1\.norm\.(\w+)', r'panoptic_head.pixel_decoder.lateral_convs.0.gn.\1'),
    (_P + r'layer_1\.weight', 'panoptic_head.pixel_decoder.output_convs.0.conv.weight'),
    (_P + r'layer_1\.norm\.(\w+)', r'panoptic_head.pixel_decoder.output_convs.0.gn.\1'),
    # transformer decoder: an mmdet layer is cross-attn, norms.0, self-attn, norms.1, ffn, norms.2
    (_D + r'transformer_cross_attention_layers\.(\d+)\.multihead_attn\.(.+)',
     r'panoptic_head.transformer_decoder.layers.\1.cross_attn.attn.\2'),
    (_D + r'transformer_cross_attention_layers\.(\d+)\.norm\.(\w+)',
     r'panoptic_head.transformer_decoder.layers.\1.norms.0.\2'),
    (_D + r'transformer_self_attention_layers\.(\d+)\.self_attn\.(.+)',
     r'panoptic_head.transformer_decoder.layers.\1.self_attn.attn.\2'),
    (_D + r'transformer_self_attention_layers\.(\d+)\.norm\.(\w+)',
     r'panoptic_head.transformer_decoder.layers.\1.norms.1.\2'),
    (_D + r'transformer_ffn_layers\.(\d+)\.linear1\.(\w+)',
     r'panoptic_head.transformer_decoder.layers.\1.ffn.layers.0.0.\2'),
    (_D + r'transformer_ffn_layers\.(\d+)\.linear2\.(\w+)',
     r'panoptic_head.transformer_decoder.layers.\1.ffn.layers.1.\2'),
    (_D + r'transformer_ffn_layers\.(\d+)\.norm\.(\w+)',
     r'panoptic_head.transformer_decoder.layers.\1.norms.2.\2'),
    (_D + r'decoder_norm\.(\w+)', r'panoptic_head.transformer_decoder.post_norm.\1'),
    (_D + r'(query_feat|query_embed|level_embed)\.weight', r'panoptic_head.\1.weight'),
    (_D + r'class_embed\.(\w+)', r'panoptic_head.cls_embed.\1'),
    (_D + r'mask_embed\.layers\.(\d)\.(\w+)',
     lambda m: f'panoptic_head.mask_embed.{2 * int(m[1])}.{m[2]}'),  # Linear, ReLU, Linear, ...
]


class ConversionError(ValueError):
    """The checkpoint is not the model the config describes, or does not map completely."""


def release_to_mmibs(key: str) -> Optional[str]:
    """The mmibs name of one release tensor, or None when no rule matches."""
    return rename_key(key, RULES)


def _names_list(names: Sequence[str], limit: int = 12) -> str:
    names = list(names)
    more = f' ... and {len(names) - limit} more' if len(names) > limit else ''
    return ', '.join(names[:limit]) + more


def load_release_checkpoint(path: str, unsafe_load: bool = False) -> Tuple[dict, dict]:
    """Read a detectron2 checkpoint.

    Args:
        path (str): ``.pth`` (``torch.save`` of ``{'model': ..., 'iteration': ...}`` or of a bare
            state dict) or detectron2 ``.pkl`` (``{'model': {name: ndarray}}``).
        unsafe_load (bool): Allow full unpickling (trusted files only). Defaults to False.

    Returns:
        tuple[dict, dict]: The model state dict (name -> Tensor) and the other top-level entries
        that are plain numbers or strings (e.g. ``iteration``).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such checkpoint file')
    if path.endswith('.pkl'):
        if not unsafe_load:
            raise ConversionError(f'{path}: a .pkl checkpoint needs full unpickling; pass '
                                  '--unsafe-load if you trust the file')
        with open(path, 'rb') as f:
            ckpt = pickle.load(f, encoding='latin1')
    else:
        try:
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as err:
            if not unsafe_load:
                raise ConversionError(
                    f'{path}: torch.load(weights_only=True) refused it ({err}); pass '
                    '--unsafe-load if you trust the file') from err
            ckpt = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(ckpt, dict):
        raise ConversionError(f'{path}: expected a dict, got {type(ckpt).__name__}')
    state = ckpt.get('model', ckpt)
    if 'state_dict' in ckpt and 'model' not in ckpt:
        raise ConversionError(f'{path}: has "state_dict", not "model": this looks like an '
                              'mmengine checkpoint already')
    out = OrderedDict()
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.array(value))  # a copy; keeps 0-d arrays 0-d
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f'{path}: model entry {key!r} is a {type(value).__name__}, '
                                  'not a tensor')
        out[key] = value
    extra = {k: v for k, v in ckpt.items() if isinstance(v, (int, float, str)) and k != 'model'}
    return out, extra


def detect_dataset(release_sd: Dict[str, torch.Tensor]) -> str:
    """The dataset of a release checkpoint from its class head (K + 1 rows)."""
    weight = release_sd.get(CLASS_HEAD + 'weight')
    if weight is None:
        raise ConversionError(f'not a Mask2Former checkpoint: no {CLASS_HEAD}weight')
    rows = weight.shape[0]
    by_rows = {len(v[0]) + 1: k for k, v in DATASETS_INFO.items()}
    if rows not in by_rows:
        raise ConversionError(
            f'the class head has {rows} rows; known: ' +
            ', '.join(f'{r} ({d})' for r, d in sorted(by_rows.items())) +
            '; give --dataset and --config for another class set')
    return by_rows[rows]


def check_backbone(release_sd: Dict[str, torch.Tensor], depth: int) -> None:
    """Refuse a checkpoint whose backbone is not a detectron2 ResNet of ``depth``."""
    blocks = {}
    bottleneck = False
    for key in release_sd:
        match = re.match(r'backbone\.res([2-5])\.(\d+)\.', key)
        if match:
            stage = int(match[1])
            blocks[stage] = max(blocks.get(stage, 0), int(match[2]) + 1)
            bottleneck |= '.conv3.' in key
    if not blocks or 'backbone.stem.conv1.weight' not in release_sd:
        found = sorted({k.split('.')[1] for k in release_sd if k.startswith('backbone.')})
        raise ConversionError('the backbone is not a detectron2 ResNet (no backbone.stem / '
                              f'backbone.res2..res5; found backbone.{{{_names_list(found)}}})')
    layout = (tuple(blocks.get(s, 0) for s in (2, 3, 4, 5)), bottleneck)
    if depth not in RESNET_LAYOUTS:
        raise ConversionError(f'the config asks for ResNet-{depth}, which is not supported')
    if layout != RESNET_LAYOUTS[depth]:
        names = [f'ResNet-{d}' for d, lay in RESNET_LAYOUTS.items() if lay == layout]
        what = names[0] if names else f'blocks {layout[0]}, bottleneck={layout[1]}'
        raise ConversionError(f'the checkpoint backbone is {what}; the config expects '
                              f'ResNet-{depth}')


def class_permutation(release_classes: Sequence[str], mmibs_classes: Sequence[str]) -> List[int]:
    """``perm[r]`` = release row of mmibs label ``r``; the no-object row stays last.

    Raises:
        ConversionError: If the two class lists are not the same set of names.
    """

    def norm(name: str) -> str:
        return ' '.join(name.lower().replace('_', ' ').split())

    index = {norm(n): i for i, n in enumerate(release_classes)}
    missing = [n for n in mmibs_classes if norm(n) not in index]
    unused = sorted(set(index) - {norm(n) for n in mmibs_classes})
    if missing or unused or len(mmibs_classes) != len(release_classes):
        raise ConversionError(
            f'the class lists do not map one to one: mmibs classes without a release class '
            f'[{_names_list(missing)}], release classes without an mmibs class '
            f'[{_names_list(unused)}]')
    return [index[norm(n)] for n in mmibs_classes] + [len(release_classes)]


def convert_state_dict(release_sd: Dict[str, torch.Tensor],
                       target_sd: Dict[str, torch.Tensor],
                       perm: Sequence[int]) -> 'OrderedDict[str, torch.Tensor]':
    """Rename and reorder the release tensors into the keys of ``target_sd``.

    Args:
        release_sd (dict[str, Tensor]): The release model's state dict.
        target_sd (dict[str, Tensor]): The mmibs model's state dict (names and shapes).
        perm (Sequence[int]): Class-head row order, see :func:`class_permutation`.

    Returns:
        OrderedDict[str, Tensor]: The complete mmibs state dict, in ``target_sd`` order.

    Raises:
        ConversionError: Unused release tensors, unfilled mmibs tensors or shape mismatches,
            all listed.
    """
    new, unmapped, mismatched = {}, [], []
    for key, value in release_sd.items():
        if key in DROPPED:
            continue
        target = release_to_mmibs(key)
        if target is None or target not in target_sd:
            unmapped.append(key if target is None else f'{key} -> {target}')
            continue
        if key.startswith(CLASS_HEAD):
            if value.shape[0] != len(perm):
                mismatched.append(f'{key}: {value.shape[0]} class rows, expected {len(perm)}')
                continue
            value = value[list(perm)]  # shape (K + 1, ...): release rows -> mmibs label order
        if tuple(value.shape) != tuple(target_sd[target].shape):
            mismatched.append(f'{key} {tuple(value.shape)} -> {target} '
                              f'{tuple(target_sd[target].shape)}')
            continue
        new[target] = value.detach().clone().to(target_sd[target].dtype)
    unfilled = []
    for key, value in target_sd.items():
        if key not in new:
            if key.endswith('num_batches_tracked'):  # FrozenBN has none; unused in eval mode
                new[key] = torch.zeros_like(value)
            else:
                unfilled.append(key)
    if unmapped or unfilled or mismatched:
        raise ConversionError(
            'the checkpoint does not map completely onto the config\'s model: '
            f'{len(unmapped)} release tensors without an mmibs name [{_names_list(unmapped)}]; '
            f'{len(unfilled)} mmibs tensors left empty [{_names_list(unfilled)}]; '
            f'{len(mismatched)} shape mismatches [{_names_list(mismatched)}]')
    return OrderedDict((k, new[k]) for k in target_sd)


def _check_dropped(release_sd: Dict[str, torch.Tensor], perm: Sequence[int], model_cfg) -> None:
    """The dropped buffers must agree with the config (no-object weight, pixel mean / std)."""
    weight = release_sd.get('criterion.empty_weight')
    class_weight = model_cfg.panoptic_head.get('loss_cls', {}).get('class_weight')
    if weight is not None and class_weight is not None:
        if not torch.allclose(weight[list(perm)].double(), torch.tensor(class_weight).double()):
            raise ConversionError(f'criterion.empty_weight {weight.tolist()} (release order) '
                                  f'differs from the config\'s loss_cls.class_weight')
    preprocessor = model_cfg.data_preprocessor
    for key, cfg_key in (('pixel_mean', 'mean'), ('pixel_std', 'std')):
        if key in release_sd:
            ours = torch.tensor(preprocessor[cfg_key], dtype=torch.float64)
            if not torch.allclose(release_sd[key].double().flatten(), ours):
                raise ConversionError(f'{key} {release_sd[key].flatten().tolist()} differs from '
                                      f'the config\'s data_preprocessor.{cfg_key}')


def build_target(config: str):
    """The config's model (no pretrained download) and its dataset metainfo.

    Returns:
        tuple: ``(model_cfg, state_dict, metainfo)``.
    """
    import mmibs  # noqa: F401  (registers the mmibs modules)
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmibs.registry import DATASETS, MODELS
    cfg = Config.fromfile(config)
    model_cfg = cfg.model
    if model_cfg.get('type') != 'Mask2Former':
        raise ConversionError(f'{config}: model.type is {model_cfg.get("type")!r}, not '
                              'Mask2Former')
    model_cfg.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset and 'metainfo' not in dataset:  # wrappers
        dataset = dataset.dataset
    metainfo = dataset.get('metainfo')
    if metainfo is None:
        with DefaultScope.overwrite_default_scope('mmdet'):
            metainfo = DATASETS.get(dataset.type).METAINFO
    metainfo = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(metainfo).items()}
    head = model_cfg.panoptic_head
    # an instance dataset lists only `classes`, all of them things
    num_things = len(metainfo.get('thing_classes', metainfo['classes']))
    num_stuff = len(metainfo.get('stuff_classes', ()))
    if (head.num_things_classes, head.num_stuff_classes) != (num_things, num_stuff):
        raise ConversionError(f'{config}: the model has {head.num_things_classes} things + '
                              f'{head.num_stuff_classes} stuff classes, its test dataset '
                              f'{num_things} + {num_stuff}')
    return model_cfg, model.state_dict(), metainfo


def convert(src: str,
            dst: str,
            config: Optional[str] = None,
            dataset: Optional[str] = None,
            unsafe_load: bool = False) -> dict:
    """Convert ``src`` (release checkpoint) into ``dst`` (mmengine checkpoint).

    Args:
        src (str): detectron2 checkpoint of the release.
        dst (str): Output path.
        config (str, optional): mmibs config whose model the checkpoint must fill. Defaults to
            the released config of the detected dataset.
        dataset (str, optional): ``'cityscapes'``, ``'mapillary'`` or ``'mapillary-instance'``;
            the release class order. Defaults to the one the class head's size gives.
        unsafe_load (bool): Allow full unpickling of ``src``. Defaults to False.

    Returns:
        dict: The ``meta`` written to ``dst``.
    """
    from mmibs.utils.atomic_io import atomic_open
    release_sd, extra = load_release_checkpoint(src, unsafe_load)
    detected = detect_dataset(release_sd) if dataset is None else dataset
    if detected not in DATASETS_INFO:
        raise ConversionError(f'--dataset must be one of {sorted(DATASETS_INFO)}, got {detected!r}')
    release_classes, _, default_config = DATASETS_INFO[detected]
    config = config or osp.join(REPO, default_config)
    model_cfg, target_sd, metainfo = build_target(config)
    check_backbone(release_sd, model_cfg.backbone.depth)
    perm = class_permutation(release_classes, metainfo['classes'])
    _check_dropped(release_sd, perm, model_cfg)
    state_dict = convert_state_dict(release_sd, target_sd, perm)
    with open(src, 'rb') as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    meta = dict(
        dataset_meta=metainfo,
        converted_from=dict(
            file=osp.basename(src),
            sha256=sha256,
            release='DdeGeus/Mask2Former-IBS (detectron2)',
            dataset=detected,
            release_class_order=list(release_classes),
            class_rows=list(perm),
            **{k: v for k, v in extra.items() if k in ('iteration', '__author__')}),
        config=osp.relpath(config, REPO) if osp.abspath(config).startswith(REPO) else config)
    with atomic_open(dst, 'wb') as f:
        torch.save(dict(meta=meta, state_dict=state_dict), f)
    return meta


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a Mask2Former-IBS (detectron2) checkpoint into an mmibs one')
    parser.add_argument('src', help='release checkpoint (model_final.pth or .pkl)')
    parser.add_argument('dst', help='output mmengine checkpoint (.pth)')
    parser.add_argument('--config', help='mmibs config whose model the checkpoint must fill '
                        '(default: configs/mask2former/released/ of the detected dataset)')
    parser.add_argument('--dataset', choices=sorted(DATASETS_INFO),
                        help='release class order (default: from the class head size)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='allow full unpickling of SRC (only for files you trust)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        meta = convert(args.src, args.dst, args.config, args.dataset, args.unsafe_load)
    except (ConversionError, FileNotFoundError) as err:
        print(f'mask2former_ibs_to_mmibs: {args.src}: {err}', file=sys.stderr)
        return 1
    src = meta['converted_from']
    print(f'{args.src} ({src["dataset"]}, {len(meta["dataset_meta"]["classes"])} classes) -> '
          f'{args.dst} for {meta["config"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
