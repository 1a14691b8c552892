# Copyright (c) mmibs contributors. All rights reserved.
"""The paper's training values, written out independently of the configs, and the name scheme.

``RECIPES`` holds what the supplementary / the released yaml files say for each (network, dataset,
data mode): optimiser, learning rate, weight decay, iterations, images per iteration, crop, resize,
loss weights (the releases' yaml files; ``docs/release_differences.md``). ``expected_values``
combines a recipe with what the config's file name encodes (GPUs x images per GPU, IBS on/off, the
ablation variant), so that tests/test_configs/test_configs.py can compare every config against it.
"""
import re
from typing import Optional

# {model}_{backbone}_{gpus}xb{batch}-{iters}_{dataset}-[instance-]{crop|cropsamp|full}-{size}
# [-ibs][-variant].py
NAME_PATTERN = re.compile(r'^(?P<model>panoptic-fcn|mask2former|maskformer|solov2|condinst)_'
                          r'(?P<backbone>r50|r18-tiny)_'
                          r'(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<iters>\d+)k_'
                          r'(?P<dataset>synthetic-cityscapes|cityscapes|mapillary)-'
                          r'(?P<task>instance-)?(?P<mode>crop|cropsamp|full)-'
                          r'(?P<size>\d+(?:x\d+)?)(?P<ibs>-ibs)?(?P<variant>-[a-z0-9.-]+)?\.py$')

_CS_SCALE = dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0))  # 0.5-2.0
_VISTAS_SHORT_SIDE = dict(
    type='RandomShortestEdgeResize', choices=(1024, 2048, 9), max_size=4096)
# Mask2Former draws the short side from [int(x * 0.1 * S) for x in range(5, 21)] (detectron2's
# "choice"): 0.5-2.0 x 1024 on Cityscapes, 0.5-2.0 x 2048 on Vistas (the release's
# Base-MapillaryVistas-PanopticSegmentation*.yaml; see configs/mask2former/README.md).
_M2F_CS_SHORT_SIDE = dict(type='RandomShortestEdgeResize', choices=(512, 2048, 16), max_size=4096)
_M2F_VISTAS_SHORT_SIDE = dict(
    type='RandomShortestEdgeResize', choices=(1024, 4096, 16),
    max_size=8192)  # (min, max, number of choices)

# Target-scale resize of crop sampling (docs/data.md, INPUT.NEW_SAMPLING_*).
_CS_CROP_SAMPLING = dict(side_min=512, side_max=3096, overall_max=6192)
_VISTAS_CROP_SAMPLING = dict(side_min=1024, side_max=6192, overall_max=9288)

_PANOPTIC_FCN_SGD = dict(optimizer='SGD', momentum=0.9, weight_decay=1e-4, clip_value=5.0)
_MASK2FORMER_ADAMW = dict(
    optimizer='AdamW',
    weight_decay=0.05,
    lr=1e-4,
    backbone_lr_mult=0.1,
    clip_max_norm=0.01,
    warmup_iters=0)

_PFCN_CS = dict(
    num_things=8,
    num_stuff=11,
    stuff_mode='all_classes',
    num_kernels=7,
    max_instances=150,
    segment_weight=4.0,
    ibs_weight=1.0,
    embed_dims=256,
    thing_score_thr=0.01,
    similarity_thr=0.97,
    last_scale=(512, 2048))
_PFCN_VISTAS = dict(
    num_things=37,
    num_stuff=28,
    stuff_mode='with_thing',
    num_kernels=3,
    max_instances=400,
    segment_weight=3.0,
    ibs_weight=5.0,
    embed_dims=256,
    thing_score_thr=0.2,
    similarity_thr=0.95,
    last_scale=(512, 4096))
# Released Mask2Former recipe details (Base-*.yaml, mask_former_*_dataset_mapper*.py):
# detectron2's ColorAugSSDTransform at its defaults, a target needs > 1 pixel after the crop,
# mixed precision; Cityscapes trains SyncBN (NORM "SyncBN", FREEZE_AT 0), Vistas keeps FrozenBN.
_M2F_COLOR_AUG = dict(
    type='ColorAugSSDTransform',
    img_format='BGR',
    brightness_delta=32,
    contrast_low=0.5,
    contrast_high=1.5,
    saturation_low=0.5,
    saturation_high=1.5,
    hue_delta=18)
_M2F_CS = dict(
    num_things=8,
    num_stuff=11,
    ibs_weight=50.0,
    embed_dims=256,
    object_mask_thr=0.8,
    iou_thr=0.8,
    pad_size=(512, 1024),
    backbone_bn='trained',
    amp=True,
    color_aug=_M2F_COLOR_AUG,
    # things and stuff of one pixel after the crop are dropped (the release's mapper: sum > 1)
    target_filter=dict(type='FilterEmptyInstances', min_mask_area=2, min_box_wh=None,
                       min_stuff_area=2, num_things=8))
_M2F_VISTAS = dict(_M2F_CS, ibs_weight=100.0, num_things=37, num_stuff=28, object_mask_thr=0.0,
                   pad_size=(1024, 1024), backbone_bn='frozen',
                   target_filter=dict(type='FilterEmptyInstances', min_mask_area=2,
                                      min_box_wh=None, min_stuff_area=2, num_things=37))

# (model, dataset, mode) -> the paper's values. `images` is images per iteration, `crop` (h, w).
RECIPES = {
    ('panoptic-fcn', 'cityscapes', 'crop'):
    dict(
        _PANOPTIC_FCN_SGD,
        **_PFCN_CS,
        lr=0.02,
        max_iters=65000,
        warmup_iters=1000,
        images=32,
        crop=(512, 1024),
        resize=_CS_SCALE),
    ('panoptic-fcn', 'cityscapes', 'cropsamp'):
    dict(
        _PANOPTIC_FCN_SGD,
        **_PFCN_CS,
        lr=0.02,
        max_iters=65000,
        warmup_iters=1000,
        images=32,
        crop=(512, 1024),
        resize=_CS_SCALE,
        crop_sampling=_CS_CROP_SAMPLING),
    ('panoptic-fcn', 'cityscapes', 'full'):
    dict(
        _PANOPTIC_FCN_SGD,
        **_PFCN_CS,
        lr=0.005,
        max_iters=100000,
        warmup_iters=1000,
        images=4,
        crop=None,
        resize=_CS_SCALE),
    ('panoptic-fcn', 'mapillary', 'crop'):
    dict(
        _PANOPTIC_FCN_SGD,
        **_PFCN_VISTAS,
        lr=0.02,
        max_iters=150000,
        warmup_iters=2000,
        images=32,
        crop=(1024, 1024),
        resize=_VISTAS_SHORT_SIDE),
    ('panoptic-fcn', 'mapillary', 'cropsamp'):
    dict(
        _PANOPTIC_FCN_SGD,
        **_PFCN_VISTAS,
        lr=0.02,
        max_iters=150000,
        warmup_iters=2000,
        images=32,
        crop=(1024, 1024),
        resize=_VISTAS_SHORT_SIDE,
        crop_sampling=_VISTAS_CROP_SAMPLING),
    ('panoptic-fcn', 'mapillary', 'full'):
    dict(
        _PANOPTIC_FCN_SGD,
        **_PFCN_VISTAS,
        lr=0.005,
        max_iters=150000,
        warmup_iters=2000,
        images=8,
        crop=None,
        resize=_VISTAS_SHORT_SIDE),
    ('mask2former', 'cityscapes', 'crop'):
    dict(
        _MASK2FORMER_ADAMW,
        **_M2F_CS,
        max_iters=90000,
        images=16,
        crop=(512, 1024),
        resize=_M2F_CS_SHORT_SIDE),
    ('mask2former', 'cityscapes', 'cropsamp'):
    dict(
        _MASK2FORMER_ADAMW,
        **_M2F_CS,
        max_iters=90000,
        images=16,
        crop=(512, 1024),
        resize=_M2F_CS_SHORT_SIDE,
        crop_sampling=_CS_CROP_SAMPLING),
    ('mask2former', 'mapillary', 'crop'):
    dict(
        _MASK2FORMER_ADAMW,
        **_M2F_VISTAS,
        max_iters=300000,
        images=16,
        crop=(1024, 1024),
        resize=_M2F_VISTAS_SHORT_SIDE),
    ('mask2former', 'mapillary', 'cropsamp'):
    dict(
        _MASK2FORMER_ADAMW,
        **_M2F_VISTAS,
        max_iters=300000,
        images=16,
        crop=(1024, 1024),
        resize=_M2F_VISTAS_SHORT_SIDE,
        crop_sampling=_VISTAS_CROP_SAMPLING),
}
# MaskFormer + IBS (beyond the paper): no Cityscapes panoptic recipe exists for MaskFormer, so it
# trains on Mask2Former's Cityscapes crop recipe; the network is mmdet's MaskFormer (frozen
# backbone BN), and IBS is dense on all 6 decoder layers with weight 4 (the supplementary's
# loss-ratio rule measured on the tiny MaskFormer, docs/results/ibs_loss_ratio_maskformer.md).
RECIPES[('maskformer', 'cityscapes', 'crop')] = dict(
    RECIPES[('mask2former', 'cityscapes', 'crop')],
    ibs_weight=4.0,
    backbone_bn='frozen',
    num_decoder_layers=6,
    mask_loss=('FocalLoss', 20.0),
    dice_weight=1.0,
    class_loss_weight=1.0)
# Vistas instance segmentation: the panoptic recipe without stuff classes.
# The target filter follows the release's instance mapper (box area > 1, mask >= 1 pixel).
RECIPES[('mask2former', 'mapillary-instance', 'crop')] = dict(
    RECIPES[('mask2former', 'mapillary', 'crop')],
    num_stuff=0,
    target_filter=dict(type='FilterEmptyInstances', min_box_wh=None, min_box_area=1))

# Cityscapes instance segmentation with SOLOv2 and CondInst (not in the paper): the Cityscapes crop
# protocol of Panoptic FCN (32 crops of 512x1024, 65k poly iterations, 1000 warm-up) with mmdet's
# SGD recipe of each model (lr 0.01 for 16 images scaled to 0.02 for 32; SOLOv2 clips the gradient
# norm at 35, CondInst does not clip). IBS weights by the supplementary's loss-ratio rule measured
# on the tiny networks (docs/results/ibs_loss_ratio_heads.md): SOLOv2 1.3, CondInst 1.7.
_INSTANCE_CS = dict(
    optimizer='SGD',
    momentum=0.9,
    weight_decay=1e-4,
    lr=0.02,
    max_iters=65000,
    warmup_iters=1000,
    images=32,
    crop=(512, 1024),
    resize=_CS_SCALE,
    num_things=8,
    num_stuff=0)
RECIPES[('solov2', 'cityscapes-instance', 'crop')] = dict(
    _INSTANCE_CS, clip_max_norm=35.0, mask_weight=3.0, ibs_weight=1.3)
RECIPES[('condinst', 'cityscapes-instance', 'crop')] = dict(
    _INSTANCE_CS, clip_max_norm=None, mask_weight=1.0, ibs_weight=1.7)

#: Test-time settings of the released checkpoints (TEST.*, INPUT.*_SIZE_TEST,
#: NUM_OBJECT_QUERIES of the released yamls; configs/mask2former/released/).
RELEASED_TEST = {
    'mask2former_r50_release_cityscapes-panoptic.py':
    dict(recipe=('mask2former', 'cityscapes', 'cropsamp'), test_resize=(1024, 2048),
         object_mask_thr=0.8, iou_thr=0.8, num_queries=100, panoptic_on=True, instance_on=True,
         max_per_image=100, num_classes=19),
    'mask2former_r50_release_mapillary-panoptic.py':
    dict(recipe=('mask2former', 'mapillary', 'cropsamp'), test_resize=(2048, 2048),
         object_mask_thr=0.0, iou_thr=0.8, num_queries=100, panoptic_on=True, instance_on=False,
         max_per_image=100, num_classes=65),
    'mask2former_r50_release_mapillary-instance.py':
    dict(recipe=('mask2former', 'mapillary-instance', 'crop'), test_resize=(2048, 2048),
         object_mask_thr=0.0, iou_thr=0.8, num_queries=100, panoptic_on=False, instance_on=True,
         max_per_image=100, num_classes=37),
}


def parse_name(filename: str) -> Optional[dict]:
    """Fields of a config file name (see ``NAME_PATTERN``), or None if it does not match."""
    match = NAME_PATTERN.match(filename)
    if match is None:
        return None
    fields = match.groupdict()
    fields['gpus'], fields['batch'] = int(fields['gpus']), int(fields['batch'])
    fields['iters'] = int(fields['iters']) * 1000
    fields['ibs'] = bool(fields['ibs'])
    fields['variant'] = (fields['variant'] or '')[1:]
    fields['dataset_key'] = fields['dataset'] + ('-instance' if fields['task'] else '')
    return fields


def expected_values(filename: str) -> dict:
    """The recipe of ``filename`` with the name's batch layout and IBS variant applied.

    Returns:
        dict: The recipe plus ``gpus``, ``images_per_gpu``, ``ibs`` (bool), ``partner``
        ('pair' with crop sampling, 'random' without: docs/method.md) and the variant's
        ``ibs_weight`` / ``embed_dims`` / ``partner``.
    """
    fields = parse_name(filename)
    if fields is None:
        raise ValueError(f'{filename}: does not follow {NAME_PATTERN.pattern}')
    key = (fields['model'], fields['dataset_key'], fields['mode'])
    if key not in RECIPES:
        raise KeyError(f'{filename}: no recipe for {key} in config_expectations.RECIPES')
    out = dict(
        RECIPES[key],
        gpus=fields['gpus'],
        images_per_gpu=fields['batch'],
        max_iters_in_name=fields['iters'],
        ibs=fields['ibs'],
        partner='pair' if fields['mode'] == 'cropsamp' else 'random')
    variant = fields['variant']
    if variant.startswith('lambda'):
        out['ibs_weight'] = float(variant[len('lambda'):])
    elif variant.startswith('partner-'):
        out['partner'] = variant[len('partner-'):]
    elif variant.startswith('c') and variant[1:].isdigit():
        out['embed_dims'] = int(variant[1:])
    elif variant:
        raise ValueError(f'{filename}: unknown variant {variant!r}')
    if variant and not fields['ibs']:
        raise ValueError(f'{filename}: the variants are IBS ablations; the name lacks -ibs')
    return out
