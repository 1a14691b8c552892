# Copyright (c) mmibs contributors. All rights reserved.
"""Synthetic ground-truth / prediction pairs in COCO-panoptic format, for evaluator tests and
benchmarks.

The ground truth looks like a street scene in Cityscapes' encoding (stuff id = labelId, thing
id = labelId * 1000 + k, crowd thing id = labelId): stuff bands, rows of touching same-class thing
boxes (cars side by side, the confusable case of the IBS paper), crowd regions and void blobs.
The prediction is the ground truth with structured errors: a global shift, merged neighbours, split
instances, missed and spurious instances, wrong classes and void pixels; enough to exercise every
branch of the PQ matching and of the thing pixel counts.

Shape shorthand: H, W image height and width.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmibs.utils.panoptic_ids import id2rgb
from .primitives import CITYSCAPES_CATEGORIES, dump_json, ellipse, write_image


def _stuff_layout(height: int, width: int, stuff: List[dict],
                  rng: np.random.Generator) -> np.ndarray:
    """Horizontal bands of stuff ids with jagged borders, some split into vertical blocks."""
    ids = np.zeros((height, width), dtype=np.int64)
    num_bands = int(rng.integers(3, 6))
    edges = np.sort(rng.choice(np.arange(1, height), num_bands - 1, replace=False))
    edges = np.concatenate([[0], edges, [height]])
    cols = np.arange(width)
    for b in range(num_bands):
        top = edges[b] + (np.sin(cols / rng.uniform(20, 200)) * rng.uniform(0, height / 40))
        bottom = edges[b + 1]
        rows = np.arange(height)[:, None]
        band = (rows >= top[None, :].clip(0)) & (rows < bottom)
        blocks = int(rng.integers(1, 4))
        cuts = np.sort(rng.integers(0, width, blocks - 1))
        block_of_col = np.searchsorted(cuts, cols, side='right')
        for k in range(blocks):
            cat = stuff[int(rng.integers(len(stuff)))]
            ids[band & (block_of_col == k)[None, :]] = cat['id']
    return ids


def make_panoptic_pair(
        height: int,
        width: int,
        rng: np.random.Generator,
        categories: Sequence[dict] = CITYSCAPES_CATEGORIES,
        num_things: int = 40,
        distinct_crowd_ids: bool = False) -> Tuple[np.ndarray, List[dict], np.ndarray, List[dict]]:
    """One synthetic ground truth and a prediction of it with structured errors.

    Args:
        height (int): H.
        width (int): W.
        rng (np.random.Generator): Source of randomness.
        categories (Sequence[dict]): Categories with ``id`` < 1000, ``isthing``.
            Defaults to Cityscapes' 19.
        num_things (int): Number of ground-truth thing instances (about). Defaults to 40.
        distinct_crowd_ids (bool): Give every crowd region its own segment id (COCO style) instead
            of one id per category (Cityscapes style). Defaults to False.

    Returns:
        tuple: ``gt_ids`` (H, W) int64, ``gt_segments``, ``pred_ids`` (H, W) int64,
        ``pred_segments`` (``segments_info`` lists; ground truth with ``iscrowd`` and ``area``).
    """
    stuff = [c for c in categories if not c['isthing']]
    things = [c for c in categories if c['isthing']]
    gt = _stuff_layout(height, width, stuff, rng)
    pred = np.roll(gt, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    gt_info = {int(i): (int(i), 0) for i in np.unique(gt)}  # id -> (category id, iscrowd)
    pred_info = {int(i): int(i) for i in np.unique(pred)}  # id -> category id

    # Things: boxes in rows of same-class neighbours (touching, like parked cars).
    next_inst = {c['id']: 1 for c in things}
    next_pred = 1000 * 1000
    while sum(next_inst.values()) - len(things) < num_things:
        cat = things[int(rng.integers(len(things)))]['id']
        size = int(min(height, width) * rng.uniform(0.03, 0.25))
        h, w = max(size, 2), max(int(size * rng.uniform(0.6, 2.0)), 2)
        y, x = int(rng.integers(0, max(height - h, 1))), int(rng.integers(0, max(width - w, 1)))
        crowd = rng.random() < 0.08
        boxes = []
        for r in range(int(rng.integers(1, 4))):
            x0 = x + r * w
            if x0 >= width:
                break
            if crowd:
                seg_id = cat + (1000 * 900 + 1000 * next_inst[cat] if distinct_crowd_ids else 0)
            else:
                seg_id = cat * 1000 + next_inst[cat]
            next_inst[cat] += 1
            gt[y:y + h, x0:x0 + w] = seg_id
            gt_info[seg_id] = (cat, int(crowd))
            boxes.append(x0)
        # the prediction of this row: shifted boxes with structured errors
        dy, dx = (int(v) for v in rng.integers(-h // 6 - 1, h // 6 + 2, 2))
        merge = len(boxes) > 1 and rng.random() < 0.3
        for k, x0 in enumerate(boxes):
            fate = rng.random()
            if fate < 0.08:
                continue  # missed instance
            if not (merge and k > 0):
                next_pred += 2
            pred_cat = cat if fate > 0.12 else things[int(rng.integers(len(things)))]['id']
            y0, y1 = max(y + dy, 0), max(y + h + dy, 0)
            xa, xb = max(x0 + dx, 0), max(x0 + w + dx, 0)
            pred[y0:y1, xa:xb] = next_pred
            pred_info[next_pred] = pred_cat
            if rng.random() < 0.15:  # split: the right half becomes another segment
                pred[y0:y1, (xa + xb) // 2:xb] = next_pred + 1
                pred_info[next_pred + 1] = pred_cat
        if rng.random() < 0.1:  # spurious instance
            next_pred += 2
            ys, xs = int(rng.integers(0, height)), int(rng.integers(0, width))
            pred[ys:ys + h // 2 + 1, xs:xs + w // 2 + 1] = next_pred
            pred_info[next_pred] = things[int(rng.integers(len(things)))]['id']

    # Void: blobs in the ground truth and holes in the prediction.
    for target in (gt, pred):
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
            rx, ry = int(rng.integers(2, width // 8 + 3)), int(rng.integers(2, height // 8 + 3))
            target[ellipse(height, width, cy, cx, ry, rx, angle=float(rng.uniform(0, 180)))] = 0

    gt_segments = [
        dict(id=int(i), category_id=gt_info[int(i)][0], iscrowd=gt_info[int(i)][1], area=int(a))
        for i, a in zip(*np.unique(gt, return_counts=True)) if i != 0
    ]
    pred_segments = [dict(id=int(i), category_id=pred_info[int(i)]) for i in np.unique(pred) if i]
    return gt, gt_segments, pred, pred_segments


def write_panoptic_pairs(root: str,
                         num_images: int = 3,
                         height: int = 64,
                         width: int = 128,
                         seed: int = 0,
                         num_things: int = 12,
                         categories: Sequence[dict] = CITYSCAPES_CATEGORIES,
                         id_offset: Optional[int] = None,
                         city: str = 'city',
                         pred_writer: str = 'pil') -> Dict[str, str]:
    """Write ground truth and predictions of :func:`make_panoptic_pair` in COCO-panoptic format.

    Layout::

        root/gt.json  root/gt/<image_id>_gtFine_panoptic.png
        root/pred.json  root/pred/<image_id>.png

    Image ids are Cityscapes-like strings (``<city>_000000_000019``) and the two sides use
    different file names, so only ``image_id`` links them (as ``evaluatePanoptic`` requires). The
    ground truth is written with PIL, as cityscapesscripts' ``createPanopticImgs`` does.

    Args:
        root (str): Output folder (created).
        num_images (int): Number of image pairs. Defaults to 3.
        height (int): H. Defaults to 64.
        width (int): W. Defaults to 128.
        seed (int): Seed. Defaults to 0.
        num_things (int): Ground-truth thing instances per image (about). Defaults to 12.
        categories (Sequence[dict]): Categories. Defaults to Cityscapes' 19 (labelIds).
        id_offset (int, optional): Added to every non-void ground-truth segment id (e.g. 2**23 to
            get COCO-like large ids); crowd regions then get distinct ids. Defaults to None.
        city (str): First part of the image ids. Defaults to 'city'.
        pred_writer (str): PNG writer of the predictions, ``'pil'`` or ``'cv2'`` (what mmibs'
            metric writes with). Defaults to 'pil'.

    Returns:
        dict: ``gt_json``, ``gt_folder``, ``pred_json``, ``pred_folder``.
    """
    if pred_writer not in ('pil', 'cv2'):
        raise ValueError(f"pred_writer must be 'pil' or 'cv2', got {pred_writer!r}")
    rng = np.random.default_rng(seed)
    paths = dict(
        gt_json=osp.join(root, 'gt.json'),
        gt_folder=osp.join(root, 'gt'),
        pred_json=osp.join(root, 'pred.json'),
        pred_folder=osp.join(root, 'pred'))
    os.makedirs(paths['gt_folder'], exist_ok=True)
    os.makedirs(paths['pred_folder'], exist_ok=True)
    images, gt_anns, pred_anns = [], [], []
    for k in range(num_images):
        image_id = f'{city}_{k:06d}_000019'
        gt, gt_segments, pred, pred_segments = make_panoptic_pair(
            height, width, rng, categories, num_things, distinct_crowd_ids=bool(id_offset))
        if id_offset:
            gt = np.where(gt > 0, gt + id_offset, 0)
            for seg in gt_segments:
                seg['id'] += id_offset
        gt_file, pred_file = f'{image_id}_gtFine_panoptic.png', f'{image_id}.png'
        write_image(id2rgb(gt), osp.join(paths['gt_folder'], gt_file))
        if pred_writer == 'pil':
            write_image(id2rgb(pred), osp.join(paths['pred_folder'], pred_file))
        else:
            cv2.imwrite(osp.join(paths['pred_folder'], pred_file), id2rgb(pred)[..., ::-1])
        images.append(
            dict(id=image_id, file_name=f'{image_id}_leftImg8bit.png', height=height, width=width))
        gt_anns.append(dict(image_id=image_id, file_name=gt_file, segments_info=gt_segments))
        pred_anns.append(dict(image_id=image_id, file_name=pred_file, segments_info=pred_segments))
    dump_json(
        dict(images=images, annotations=gt_anns, categories=list(categories)), paths['gt_json'])
    dump_json(dict(annotations=pred_anns), paths['pred_json'])
    return paths
