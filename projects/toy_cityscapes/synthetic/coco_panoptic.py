# Copyright (c) mmibs contributors. All rights reserved.
"""A tiny COCO-panoptic dataset written on the fly, for tests of the training and testing tools."""
import os.path as osp

import numpy as np
from cityscapesscripts.helpers.labels import name2label

from mmibs.utils.panoptic_ids import id2rgb
from .primitives import bbox_xywh, dump_json, rect, write_image

#: Categories of the tiny set: things first, as mmdet's contiguous labels expect; Cityscapes'
#: thing flags and colours.
TINY_CATEGORIES = [
    dict(id=k, name=name, isthing=int(name2label[name].hasInstances),
         color=list(name2label[name].color))
    for k, name in enumerate(('car', 'person', 'road'), start=1)
]


def write_tiny_coco_panoptic(root: str,
                             num_images: int = 2,
                             height: int = 64,
                             width: int = 96,
                             seed: int = 0) -> dict:
    """Write a tiny COCO-panoptic set under ``root``.

    Layout (the one mmdet's ``CocoPanopticDataset`` and ``CocoPanopticMetric`` read)::

        root/images/<k>.jpg
        root/annotations/panoptic.json
        root/annotations/panoptic/<k>.png      # RGB-encoded segment ids

    Each image has a road (stuff) background, two cars side by side (the confusable same-class pair
    of the paper) and a person, drawn in distinct colours with a little noise.

    Args:
        root (str): Output folder (created).
        num_images (int): Number of images. Defaults to 2.
        height (int): Image height. Defaults to 64.
        width (int): Image width. Defaults to 96.
        seed (int): Seed of the noise and the object placement. Defaults to 0.

    Returns:
        dict: ``data_root``, ``ann_file`` (relative to data_root), ``img_prefix``, ``seg_prefix``
        and ``metainfo`` (classes, thing_classes, stuff_classes, palette).
    """
    rng = np.random.default_rng(seed)
    colour = {c['id']: np.array(c['color'], dtype=np.float32) for c in TINY_CATEGORIES}
    images, annotations = [], []
    for k in range(num_images):
        ids = np.full((height, width), 1, dtype=np.int64)  # segment 1: road
        segments = [dict(id=1, category_id=3)]
        top = int(rng.integers(height // 4, height // 2))
        car_w = width // 4
        left = int(rng.integers(2, width // 4))
        for j, x0 in enumerate((left, left + car_w)):  # two touching cars
            ids[rect(height, width, top, top + height // 3, x0, x0 + car_w)] = 2 + j
            segments.append(dict(id=2 + j, category_id=1))
        px = min(width - 8, left + 2 * car_w + 4)
        ids[rect(height, width, height // 8, height // 8 + height // 2, px, px + 6)] = 4
        segments.append(dict(id=4, category_id=2))

        img = np.zeros((height, width, 3), dtype=np.float32)
        for seg in segments:
            shade = 0.75 if seg['id'] == 3 else 1.0  # the second car is darker
            img[ids == seg['id']] = colour[seg['category_id']] * shade
        img += rng.normal(0, 8, img.shape)
        file_stem = f'{k:06d}'
        img_path = osp.join(root, 'images', file_stem + '.jpg')
        write_image(np.clip(img, 0, 255).astype(np.uint8), img_path, quality=95)
        write_image(id2rgb(ids), osp.join(root, 'annotations', 'panoptic', file_stem + '.png'))
        for seg in segments:
            mask = ids == seg['id']
            seg.update(area=int(mask.sum()), bbox=bbox_xywh(mask), iscrowd=0)
        images.append(dict(id=k, file_name=file_stem + '.jpg', height=height, width=width))
        annotations.append(dict(image_id=k, file_name=file_stem + '.png', segments_info=segments))

    dump_json(
        dict(images=images, annotations=annotations, categories=TINY_CATEGORIES),
        osp.join(root, 'annotations', 'panoptic.json'))
    return dict(
        data_root=root,
        ann_file='annotations/panoptic.json',
        img_prefix='images/',
        seg_prefix='annotations/panoptic/',
        metainfo=dict(
            classes=tuple(c['name'] for c in TINY_CATEGORIES),
            thing_classes=tuple(c['name'] for c in TINY_CATEGORIES if c['isthing']),
            stuff_classes=tuple(c['name'] for c in TINY_CATEGORIES if not c['isthing']),
            palette=[tuple(c['color']) for c in TINY_CATEGORIES]))
