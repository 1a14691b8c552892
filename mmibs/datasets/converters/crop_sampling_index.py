# Copyright (c) mmibs contributors. All rights reserved.
"""The crop sampling index: for each category, the images that contain it (``docs/data.md``).

The released IBS code prepares ``images_per_class_train.json`` offline (``prepare_cityscapes_
sampling.py``): for every category id, the training images holding at least one *non-crowd*
segment of it, things and stuff alike. :class:`mmibs.datasets.CropSamplingDataset` reads this
file when given one (it can also compute the same index from the dataset it wraps); the segment
a crop is centred on is then drawn among all segments of the category in the image, crowd
regions included (``CropSamplingDataset(include_crowd=True)``), as released.

File format::

    {"ann_file": "<json it was built from>",
     "categories": [{"id": 26, "name": "car", "isthing": 1}, ...],   # categories with >= 1 image
     "cat_ids": [26, ...],
     "imgs_per_cat": {"26": ["aachen_000000_000019", ...], ...}}
"""
from typing import Dict, List

from mmibs.utils.atomic_io import atomic_write_json
from ..utils import load_json


def build_crop_sampling_index(panoptic: dict, source: str = '') -> dict:
    """Index a COCO-panoptic json by category.

    Args:
        panoptic (dict): A loaded COCO-panoptic json.
        source (str): Its path, stored in the index and used in error messages.

    Returns:
        dict: The index described in the module docstring; categories in json order, images in
        json ``annotations`` order, each image listed once per category.
    """
    categories = {c['id']: c for c in panoptic['categories']}
    imgs_per_cat: Dict[int, List] = {cat_id: [] for cat_id in categories}
    for ann in panoptic['annotations']:
        present = set()
        for seg in ann['segments_info']:
            if seg['category_id'] not in categories:
                raise ValueError(f'{source}: image {ann["image_id"]!r} has a segment of unknown '
                                 f'category {seg["category_id"]}')
            if not seg.get('iscrowd', 0) and seg.get('area', 1) > 0:
                present.add(seg['category_id'])
        for cat_id in present:
            imgs_per_cat[cat_id].append(ann['image_id'])
    cat_ids = [c['id'] for c in panoptic['categories'] if imgs_per_cat[c['id']]]
    return dict(
        ann_file=source,
        categories=[
            dict(
                id=categories[i]['id'],
                name=categories[i]['name'],
                isthing=int(categories[i]['isthing'])) for i in cat_ids
        ],
        cat_ids=cat_ids,
        imgs_per_cat={str(i): imgs_per_cat[i]
                      for i in cat_ids})


def write_crop_sampling_index(ann_file: str, out_file: str) -> dict:
    """Build the index of ``ann_file`` and write it (atomically) to ``out_file``."""
    index = build_crop_sampling_index(load_json(ann_file), ann_file)
    atomic_write_json(index, out_file)
    return index
