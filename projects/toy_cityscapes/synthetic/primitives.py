# Copyright (c) mmibs contributors. All rights reserved.
"""What every synthetic generator draws with: masks, boxes, files and Cityscapes' category table.

Shorthand: H, W image height and width.
"""
import os
import os.path as osp
from typing import List

import numpy as np
from cityscapesscripts.helpers.labels import labels as _cityscapes_labels
from mmengine.fileio import dump
from PIL import Image

#: Cityscapes' 19 evaluated categories as ``createPanopticImgs`` lists them: labelId order (stuff
#: 7 road ... 23 sky, then things 24 person ... 33 bicycle), labelIds as ids.
CITYSCAPES_CATEGORIES = [
    dict(id=label.id, name=label.name, isthing=int(label.hasInstances))
    for label in _cityscapes_labels if not label.ignoreInEval
]


def rect(h: int, w: int, y0: float, y1: float, x0: float, x1: float) -> np.ndarray:
    """(H, W) bool mask of rows [y0, y1) and columns [x0, x1), clipped to the image."""
    mask = np.zeros((h, w), dtype=bool)
    mask[max(int(y0), 0):max(int(y1), 0), max(int(x0), 0):max(int(x1), 0)] = True
    return mask


def ellipse(h: int,
            w: int,
            cy: float,
            cx: float,
            ry: float,
            rx: float,
            angle: float = 0.0) -> np.ndarray:
    """(H, W) bool mask of the ellipse of centre (cy, cx) and radii (ry, rx), its x axis turned
    by ``angle`` degrees (clockwise on the image, as OpenCV's ``ellipse``)."""
    ys, xs = np.ogrid[:h, :w]
    dy, dx = ys - cy, xs - cx
    if angle:
        rad = np.deg2rad(angle)
        dx, dy = dx * np.cos(rad) + dy * np.sin(rad), dy * np.cos(rad) - dx * np.sin(rad)
    return (dy / max(ry, 1.0))**2 + (dx / max(rx, 1.0))**2 <= 1.0


def bbox_xywh(mask: np.ndarray) -> List[int]:
    """COCO box [x, y, w, h] of a non-empty (H, W) mask."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def write_image(array: np.ndarray, path: str, **save_kwargs) -> None:
    """Write (H, W) or (H, W, 3) RGB ``array`` in the format of ``path``'s extension (PIL),
    creating its folder; ``save_kwargs`` go to PIL's ``save`` (e.g. JPEG ``quality``)."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    Image.fromarray(array).save(path, **save_kwargs)


def dump_json(obj: dict, path: str) -> None:
    """Write ``obj`` as json, creating the folder."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    dump(obj, path, file_format='json')
