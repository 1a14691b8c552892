# Copyright (c) mmibs contributors. All rights reserved.
"""The synthetic street scenes packed as a data loader hands them to a model, without files.

For benchmarks that time a training step: the batch is what ``PackDetInputs`` makes of a
Cityscapes-layout scene (:func:`.scenes.draw_scene`), with Cityscapes' 19 classes in mmibs' label
order (8 things, then 11 stuff).
"""
from typing import Dict

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from mmibs.datasets.cityscapes_panoptic import CITYSCAPES_STUFF_CLASSES, CITYSCAPES_THING_CLASSES
from .primitives import bbox_xywh
from .scenes import draw_scene, present_segments, render_image

#: Cityscapes' classes in label order: things first.
CITYSCAPES_CLASSES = CITYSCAPES_THING_CLASSES + CITYSCAPES_STUFF_CLASSES


def packed_scenes(num_images: int, height: int, width: int, seed: int = 0) -> Dict[str, list]:
    """``num_images`` scenes packed for ``model.train_step``.

    Args:
        num_images (int): Images in the batch.
        height (int): H.
        width (int): W.
        seed (int): Seed of the scenes. Defaults to 0.

    Returns:
        dict: ``inputs``, (3, H, W) uint8 BGR images; ``data_samples``, :obj:`DetDataSample` with
        ``gt_instances`` (labels, BitmapMasks and xyxy HorizontalBoxes of the non-crowd things)
        and ``gt_sem_seg`` ((1, H, W) labels, 255 on void).
    """
    label_of = {name: k for k, name in enumerate(CITYSCAPES_CLASSES)}
    rng = np.random.default_rng(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        scene = draw_scene(rng, height, width)
        image = render_image(rng, scene)  # (H, W, 3) RGB
        sem = np.full((height, width), 255, dtype=np.int64)
        masks, labels, boxes = [], [], []
        for _, segment, mask in present_segments(scene):
            label = label_of.get(segment['cls'])
            if label is None:  # void in Cityscapes
                continue
            sem[mask] = label
            if segment['isthing']:  # crowd regions are not instances
                x, y, w, h = bbox_xywh(mask)
                masks.append(mask.astype(np.uint8))
                labels.append(label)
                boxes.append([x, y, x + w, y + h])
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(height, width), ori_shape=(height, width), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            labels=torch.tensor(labels, dtype=torch.long),
            masks=BitmapMasks(
                np.stack(masks) if masks else np.zeros((0, height, width), np.uint8), height,
                width),
            bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)))
        sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
        samples.append(sample)
        inputs.append(torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))))
    return dict(inputs=inputs, data_samples=samples)
