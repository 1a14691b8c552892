# Copyright (c) mmibs contributors. All rights reserved.
"""Mapillary Vistas panoptic json/PNG preparation (and an optional COCO instance json).

Vistas ships COCO-panoptic annotations already. This step checks them and writes what mmibs reads:

* the version: the json's categories must be those of Vistas ``version`` (v1.2: 65 categories with
  the v1.2 names and thing flags), otherwise a clear error;
* completeness: every image has its ``images/<key>.jpg`` and its panoptic PNG, every annotation
  its image;
* a copy of the json with categories things first (``images`` and ``annotations`` unchanged);
* with ``instances=True``, a COCO instance-segmentation json (RLE masks of the thing segments,
  crowd flags kept) for :class:`MapillaryVistasInstanceDataset` and mmdet's ``CocoMetric``.

Raw layouts accepted (``<split>`` is ``training`` or ``validation``)::

    <root>/<split>/images/<key>.jpg
    <root>/<split>/<version>/panoptic/panoptic_2018.json (v1.2) or panoptic_2020.json (v2.0)
    <root>/<split>/<version>/panoptic/<key>.png          (the v2.0 release, which has both)
    <root>/<split>/panoptic/panoptic_2018.json + <key>.png  (the v1.2 release)

Output (``out_dir`` defaults to ``<root>/annotations``; ``<s>`` is ``train`` or ``val``)::

    <out_dir>/mapillary_vistas_<version>_panoptic_<s>.json
    <out_dir>/mapillary_vistas_<version>_instances_<s>.json   (instances=True)
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.utils import track_iter_progress, track_parallel_progress, track_progress
from PIL import Image

from mmibs.utils.panoptic_ids import rgb2id
from mmibs.utils.atomic_io import atomic_write_json
from ..mapillary_vistas_panoptic import check_vistas_version
from ..utils import load_json, things_first

SPLIT_NAMES = {'training': 'train', 'validation': 'val', 'testing': 'test'}
_JSON_NAMES = {'v1.2': 'panoptic_2018.json', 'v2.0': 'panoptic_2020.json'}


def find_panoptic_json(root: str, split: str, version: str) -> Tuple[str, str]:
    """Locate a split's panoptic json and PNG folder in either release layout.

    Returns:
        tuple[str, str]: (json path, PNG folder).
    """
    if version not in _JSON_NAMES:
        raise ValueError(f'version must be one of {sorted(_JSON_NAMES)}, got {version!r}')
    candidates = [osp.join(root, split, version, 'panoptic', _JSON_NAMES[version])]
    if version == 'v1.2':
        candidates.append(osp.join(root, split, 'panoptic', _JSON_NAMES[version]))
    for path in candidates:
        if osp.isfile(path):
            return path, osp.dirname(path)
    raise FileNotFoundError(f'Mapillary Vistas {version} {split}: none of {candidates} exists')


def check_vistas_split(root: str, split: str, version: str, show_progress: bool = False) -> dict:
    """Load and check one split (see the module docstring).

    Returns:
        dict: ``json`` (the loaded json), ``json_path``, ``png_dir`` and ``img_dir``.
    """
    json_path, png_dir = find_panoptic_json(root, split, version)
    data = load_json(json_path)
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data, dict) or key not in data:
            raise ValueError(f'{json_path}: a COCO-panoptic json needs "images", "annotations" '
                             f'and "categories"; "{key}" is missing')
    check_vistas_version(data['categories'], version, json_path)
    img_dir = osp.join(root, split, 'images')
    anns = {a['image_id']: a for a in data['annotations']}
    image_ids = {img['id'] for img in data['images']}
    orphans = [i for i in anns if i not in image_ids]
    if orphans:
        raise ValueError(f'{json_path}: annotations of unknown images {orphans[:5]}')
    images = data['images']
    for img in track_iter_progress(images) if show_progress else images:
        img_path = osp.join(img_dir, img['file_name'])
        if not osp.isfile(img_path):
            raise FileNotFoundError(f'{img_path}: image not found (listed in {json_path})')
        ann = anns.get(img['id'])
        if ann is None:
            raise ValueError(f'{json_path}: image {img["id"]!r} has no annotation')
        png = osp.join(png_dir, ann['file_name'])
        if not osp.isfile(png):
            raise FileNotFoundError(f'{png}: panoptic PNG not found (listed in {json_path})')
    return dict(json=data, json_path=json_path, png_dir=png_dir, img_dir=img_dir)


def instances_of_image(args: Tuple[str, dict, Dict[int, dict]]) -> List[dict]:
    """COCO instance annotations (RLE) of one image's thing segments.

    Args:
        args (tuple): (PNG path, the json annotation, category id -> category).

    Returns:
        list[dict]: ``image_id``, ``category_id``, ``segmentation`` (RLE, str counts), ``area``,
        ``bbox`` [x, y, w, h] and ``iscrowd`` per thing segment with pixels.
    """
    from pycocotools import mask as mask_utils
    png, ann, categories = args
    try:
        with Image.open(png) as im:
            ids = rgb2id(np.asarray(im.convert('RGB')))
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f'{png}: cannot read the panoptic PNG ({err})') from err
    out = []
    for seg in ann['segments_info']:
        if not categories[seg['category_id']]['isthing']:
            continue
        mask = ids == seg['id']
        if not mask.any():
            continue
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        out.append(
            dict(
                image_id=ann['image_id'],
                category_id=seg['category_id'],
                segmentation=rle,
                area=int(mask.sum()),
                bbox=[float(v) for v in mask_utils.toBbox(rle)],
                iscrowd=int(seg.get('iscrowd', 0))))
    return out


def instance_json(checked: dict, nproc: int = 1, show_progress: bool = False) -> dict:
    """Build the COCO instance json of a checked split (thing categories, things-first order)."""
    data = checked['json']
    categories = {c['id']: c for c in data['categories']}
    tasks = [(osp.join(checked['png_dir'], a['file_name']), a, categories)
             for a in data['annotations']]
    if nproc > 1:
        per_image = track_parallel_progress(instances_of_image, tasks, nproc)
    elif show_progress:
        per_image = track_progress(instances_of_image, tasks)
    else:
        per_image = [instances_of_image(t) for t in tasks]
    annotations = [a for anns in per_image for a in anns]
    for k, ann in enumerate(annotations, start=1):
        ann['id'] = k
    return dict(
        images=data['images'],
        annotations=annotations,
        categories=[c for c in things_first(data['categories']) if c['isthing']])


def convert_mapillary_vistas_panoptic(root: str,
                                      out_dir: Optional[str] = None,
                                      version: str = 'v1.2',
                                      splits: Sequence[str] = ('training', 'validation'),
                                      instances: bool = False,
                                      nproc: int = 1,
                                      show_progress: bool = True) -> Dict[str, dict]:
    """Check and prepare Mapillary Vistas splits (see the module docstring).

    Args:
        root (str): Vistas root.
        out_dir (str, optional): Output folder. Defaults to ``<root>/annotations``.
        version (str): ``'v1.2'`` or ``'v2.0'``. Defaults to ``'v1.2'``.
        splits (Sequence[str]): Raw split folders. Defaults to ``('training', 'validation')``.
        instances (bool): Also write the COCO instance json. Defaults to False.
        nproc (int): Processes for the instance json. Defaults to 1.
        show_progress (bool): Show progress bars. Defaults to True.

    Returns:
        dict: split -> ``dict(ann_file, seg_dir, img_dir, num_images[, instance_file])``.
    """
    out_dir = out_dir or osp.join(root, 'annotations')
    results = {}
    for split in splits:
        if split not in SPLIT_NAMES:
            raise ValueError(f'split must be one of {sorted(SPLIT_NAMES)}, got {split!r}')
        checked = check_vistas_split(root, split, version, show_progress)
        data = dict(checked['json'], categories=things_first(checked['json']['categories']))
        short = SPLIT_NAMES[split]
        result = dict(
            seg_dir=osp.abspath(checked['png_dir']),
            img_dir=osp.abspath(checked['img_dir']),
            num_images=len(data['images']))
        if instances:
            path = osp.join(out_dir, f'mapillary_vistas_{version}_instances_{short}.json')
            atomic_write_json(instance_json(checked, nproc, show_progress), path)
            result['instance_file'] = osp.abspath(path)
        path = osp.join(out_dir, f'mapillary_vistas_{version}_panoptic_{short}.json')
        atomic_write_json(data, path)
        result['ann_file'] = osp.abspath(path)
        results[split] = result
    return results
