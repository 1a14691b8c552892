# Copyright (c) mmibs contributors. All rights reserved.
"""Tiny Panoptic FCN models and synthetic panoptic batches for tests and benchmark scripts.

A synthetic scene has horizontal stuff bands (labels after the things) and rectangular things
drawn with a per-class colour and a per-instance shade, packed as mmdet's ``PackDetInputs`` would
(``gt_instances`` with labels, BitmapMasks and HorizontalBoxes; ``gt_sem_seg`` with all classes,
255 on void).
"""
import copy
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

_BASE = osp.join('configs', '_base_', 'models', 'panoptic-fcn_r50_fpn.py')


def panoptic_fcn_base_config() -> Config:
    """The shipped base model config (``configs/_base_/models/panoptic-fcn_r50_fpn.py``)."""
    here = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(here, '.mim'), osp.dirname(here)):
        path = osp.join(root, _BASE)
        if osp.isfile(path):
            return Config.fromfile(path)
    raise FileNotFoundError(f'{_BASE} not found under mmibs/.mim or the repository root')


def tiny_panoptic_fcn_cfg(
    num_things_classes: int = 2,
    num_stuff_classes: int = 2,
    channels: int = 32,
    deform: bool = False,
    ibs: bool = False,
    stuff_mode: str = 'all_classes',
    instance_scales: Sequence[Tuple[float, float]] = ((1, 64), (32, 128), (64, 256), (128, 512),
                                                      (256, 2048))
) -> dict:
    """The base model shrunk: ResNet-18 with 16 base channels, ``channels``-wide neck and heads.

    Args:
        num_things_classes (int): Defaults to 2.
        num_stuff_classes (int): Defaults to 2.
        channels (int): Width of FPN, encoder, heads and embeddings. Defaults to 32.
        deform (bool): Deformable position head. Defaults to False.
        ibs (bool): Switch IBS on ('pair', dense, weight 4). Defaults to False.
        stuff_mode (str): Defaults to 'all_classes'.
        instance_scales (Sequence[tuple]): Scale ranges for small inputs.

    Returns:
        dict: A model config (``init_cfg=None``, no pretrained weights).
    """
    model = copy.deepcopy(panoptic_fcn_base_config().model.to_dict())
    gn = dict(type='GN', num_groups=8, requires_grad=True)
    model['backbone'].update(depth=18, base_channels=16, init_cfg=None)
    model['neck'].update(in_channels=[16, 32, 64, 128], out_channels=channels)
    head = model['panoptic_head']
    head.update(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        stuff_mode=stuff_mode)
    if ibs:
        head['loss_ibs'] = dict(type='IBSLoss', partner='pair', num_points=None, loss_weight=4.0)
    module = head['head_module']
    module['feature_encoder'].update(
        in_channels=channels, fpn_channels=channels, out_channels=channels, norm_cfg=gn)
    module['position_head'].update(
        in_channels=channels, feat_channels=channels, deform=deform, norm_cfg=gn)
    module['kernel_head'].update(in_channels=channels, feat_channels=channels, norm_cfg=gn)
    model['panoptic_fusion_head'].update(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        stuff_mode=stuff_mode)
    model['train_cfg']['target_generator']['instance_scales'] = [list(s) for s in instance_scales]
    model['test_cfg']['stuff_area_limit'] = 16
    return model


def unscaled_sample(height: int, width: int) -> DetDataSample:
    """An empty :obj:`DetDataSample` of an image of (height, width), neither resized nor padded."""
    return DetDataSample(
        metainfo=dict(
            img_shape=(height, width),
            ori_shape=(height, width),
            pad_shape=(height, width),
            batch_input_shape=(height, width),
            scale_factor=(1.0, 1.0)))


def synthetic_panoptic_sample(height: int,
                              width: int,
                              things: Sequence[Tuple[int, Tuple[int, int, int, int]]],
                              stuff_bands: Sequence[Tuple[int, int]],
                              num_things_classes: int,
                              void_rows: Optional[Tuple[int, int]] = None,
                              seed: int = 0) -> Tuple[torch.Tensor, DetDataSample]:
    """One synthetic image (0-255 BGR float) and its packed data sample.

    Args:
        height (int): H.
        width (int): W.
        things (Sequence): ``(label, (x1, y1, x2, y2))`` rectangles, later ones on top.
        stuff_bands (Sequence): ``(stuff_label, top_row)`` bands, each down to the next band.
        num_things_classes (int): T (stuff labels are >= T).
        void_rows (tuple[int], optional): Rows [a, b) of void (255). Defaults to None.
        seed (int): Seed of the pixel noise. Defaults to 0.

    Returns:
        tuple: Image (3, H, W) float and :obj:`DetDataSample`.
    """
    rng = np.random.default_rng(seed)
    sem = np.full((height, width), 255, dtype=np.int64)
    img = np.zeros((height, width, 3), dtype=np.float32)
    bands = sorted(stuff_bands, key=lambda b: b[1]) + [(None, height)]
    for (label, top), (_, bottom) in zip(bands[:-1], bands[1:]):
        sem[top:bottom] = label
        img[top:bottom] = [(40 + 60 * (label - num_things_classes)) % 256, 120, 200]
    masks = []
    for k, (label, (x1, y1, x2, y2)) in enumerate(things):
        for prev in masks:
            prev[y1:y2, x1:x2] = 0
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[y1:y2, x1:x2] = 1
        masks.append(mask)
        sem[y1:y2, x1:x2] = label
        img[y1:y2, x1:x2] = [(200 - 80 * label) % 256, (40 + 30 * k) % 256, 60]
    if void_rows is not None:
        sem[void_rows[0]:void_rows[1]] = 255
    img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.float32)
    sample = unscaled_sample(height, width)
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0] * 4)
    sample.gt_instances = InstanceData(
        labels=torch.tensor([t[0] for t in things], dtype=torch.long),
        masks=BitmapMasks(
            np.stack(masks) if masks else np.zeros((0, height, width), np.uint8), height, width),
        bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)))
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
    return torch.from_numpy(img).permute(2, 0, 1).contiguous(), sample


def two_car_scenes(height: int = 64, width: int = 128) -> Tuple[torch.Tensor, List[DetDataSample]]:
    """Two scenes with two same-class things each (and one of another class in the second):
    a crop-sampling-like pair of 0-255 images with 2 thing and 2 stuff classes."""
    h, w = height, width
    img0, s0 = synthetic_panoptic_sample(
        h,
        w, [(0, (w // 8, h // 4, w // 8 + w // 4, h // 4 + h // 3)),
            (0, (w // 2, h // 3, w // 2 + w // 3, h // 3 + h // 3))], [(2, 0), (3, h // 2)],
        num_things_classes=2,
        seed=0)
    img1, s1 = synthetic_panoptic_sample(
        h,
        w, [(0, (w // 16, h // 3, w // 16 + w // 3, h // 3 + h // 2)),
            (0, (w // 2 + w // 8, h // 6, w // 2 + w // 8 + w // 4, h // 6 + h // 3)),
            (1, (w // 2 - w // 16, h // 2 + h // 8, w // 2 + w // 16, h - h // 16))], [(3, 0),
                                                                                       (2, h // 3)],
        num_things_classes=2,
        seed=1)
    return torch.stack([img0, img1]), [s0, s1]
