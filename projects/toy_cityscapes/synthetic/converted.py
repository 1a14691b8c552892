# Copyright (c) mmibs contributors. All rights reserved.
"""Small converted synthetic datasets for tests of models, metrics, configs and the demo.

Each helper generates raw files (:mod:`.scenes`) and runs the real converter on them, so what a
test reads went through the same path as real data.
"""
import os
import os.path as osp

from mmibs.datasets.converters import (convert_cityscapes_panoptic,
                                       convert_mapillary_vistas_panoptic)
from .scenes import make_synthetic_cityscapes, make_synthetic_vistas


def make_converted_cityscapes(root: str,
                              num_train: int = 2,
                              num_val: int = 1,
                              height: int = 128,
                              width: int = 256,
                              seed: int = 0) -> dict:
    """Generate and convert a tiny synthetic Cityscapes under ``root`` (about 0.5 s at 128x256).

    Args:
        root (str): Folder to create (becomes ``data_root``).
        num_train (int): Train images. Defaults to 2.
        num_val (int): Val images. Defaults to 1.
        height (int): H. Defaults to 128.
        width (int): W. Defaults to 256.
        seed (int): Generator seed. Defaults to 0.

    Returns:
        dict: ``data_root`` (with a trailing '/'), ``manifest`` (see
        :func:`.scenes.make_synthetic_cityscapes`) and, per split ``train`` /
        ``val``, the dataset arguments ``{split}_ann_file`` and ``{split}_data_prefix``
        (relative to data_root) plus ``{split}_ann_path`` / ``{split}_seg_dir`` (absolute, for
        ``PanopticQualityMetric(ann_file, seg_prefix)``).
    """
    root = osp.abspath(root)
    os.makedirs(root, exist_ok=True)
    manifest = make_synthetic_cityscapes(
        root, num_train, num_val, height, width, seed, write_color=False)
    splits = [s for s, n in (('train', num_train), ('val', num_val)) if n > 0]
    converted = convert_cityscapes_panoptic(root, splits=splits, show_progress=False)
    out = dict(data_root=root + '/', manifest=manifest)
    for split in splits:
        out[f'{split}_ann_file'] = f'annotations/cityscapes_panoptic_{split}.json'
        out[f'{split}_data_prefix'] = dict(
            img=f'leftImg8bit/{split}/', seg=f'annotations/cityscapes_panoptic_{split}/')
        out[f'{split}_ann_path'] = converted[split]['ann_file']
        out[f'{split}_seg_dir'] = converted[split]['seg_dir'] + '/'
    return out


def make_converted_vistas(root: str,
                          num_train: int = 2,
                          num_val: int = 1,
                          height: int = 128,
                          width: int = 256,
                          seed: int = 0,
                          instances: bool = False) -> dict:
    """Generate and prepare a tiny synthetic Mapillary Vistas v1.2 under ``root``.

    Returns:
        dict: As :func:`make_converted_cityscapes` (splits ``train`` / ``val``), plus
        ``{split}_instance_file`` (relative to data_root) when ``instances``.
    """
    root = osp.abspath(root)
    os.makedirs(root, exist_ok=True)
    manifest = make_synthetic_vistas(root, num_train, num_val, height, width, seed)
    splits = [s for s, n in (('training', num_train), ('validation', num_val)) if n > 0]
    converted = convert_mapillary_vistas_panoptic(
        root, splits=splits, instances=instances, show_progress=False)
    out = dict(data_root=root + '/', manifest=manifest)
    for raw, split in (('training', 'train'), ('validation', 'val')):
        if raw not in converted:
            continue
        out[f'{split}_ann_file'] = f'annotations/mapillary_vistas_v1.2_panoptic_{split}.json'
        out[f'{split}_data_prefix'] = dict(img=f'{raw}/images/', seg=f'{raw}/v1.2/panoptic/')
        out[f'{split}_ann_path'] = converted[raw]['ann_file']
        out[f'{split}_seg_dir'] = converted[raw]['seg_dir'] + '/'
        if instances:
            out[f'{split}_instance_file'] = \
                f'annotations/mapillary_vistas_v1.2_instances_{split}.json'
    return out
