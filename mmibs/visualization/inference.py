# Copyright (c) mmibs contributors. All rights reserved.
"""Inference set-up from a config for the inference and figure tools: the dataset's classes and
palette put on the model, and a test pipeline without annotation loaders.

mmdet's ``init_detector`` and ``DetInferencer`` take class names from the checkpoint's meta and
fall back to the 80 COCO classes when a checkpoint has none (a hand-made or converted checkpoint).
A panoptic result is then decoded against the wrong class count: mmdet marks void as
``label == len(classes)``. The config's own test dataset is the one the head was built for, so the
tools here take classes and palette from it (:func:`dataset_meta_from_cfg`) and put them on the
model (:func:`apply_dataset_meta`). An image folder has no annotations, so
:func:`inference_pipeline` drops the annotation loaders from the config's test pipeline.
"""
import copy
import warnings
from typing import List, Optional, Sequence

from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

from mmibs.registry import DATASETS

SPLITS = ('train', 'val', 'test')


def dataset_cfg_of(cfg: Config, split: str = 'test') -> ConfigDict:
    """The dataset config of ``cfg.<split>_dataloader``, unwrapped from dataset wrappers.

    Args:
        cfg (Config): A full mmdet config.
        split (str): 'train', 'val' or 'test'. Defaults to 'test'.

    Returns:
        ConfigDict: A copy of the dataset config.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    loader = cfg.get(f'{split}_dataloader')
    if loader is None or 'dataset' not in loader:
        raise KeyError(f'the config has no {split}_dataloader.dataset (config file: '
                       f'{cfg.filename})')
    dataset = copy.deepcopy(loader.dataset)
    while 'dataset' in dataset:  # e.g. a crop-sampling or repeat wrapper around the dataset
        dataset = dataset.dataset
    return dataset


def dataset_meta_from_cfg(cfg: Config, split: str = 'test') -> dict:
    """Class names, thing/stuff split and palette of a config's dataset, without loading it.

    The dataset is built with ``lazy_init=True`` (its annotation file is not read), as mmdet's
    ``DetInferencer`` does for the palette. A missing palette is filled with mmdet's random one.

    Args:
        cfg (Config): A full mmdet config.
        split (str): 'train', 'val' or 'test'. Defaults to 'test'.

    Returns:
        dict: At least ``classes`` (tuple of str) and ``palette`` (list of RGB tuples), plus
        ``thing_classes``/``stuff_classes`` when the dataset defines them.
    """
    from mmdet.visualization.palette import get_palette

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = dataset_cfg_of(cfg, split)
    dataset['lazy_init'] = True
    meta = dict(DATASETS.build(dataset).metainfo)
    if not meta.get('classes'):
        raise KeyError(f'the {split} dataset of {cfg.filename} defines no classes in its metainfo')
    meta['classes'] = tuple(meta['classes'])
    meta['palette'] = get_palette(meta.get('palette', 'random'), len(meta['classes']))
    return meta


def num_thing_classes(meta: dict) -> Optional[int]:
    """Number of thing classes (labels ``[0, n)``, mmdet's things-first rule), if known."""
    things = meta.get('thing_classes')
    return None if things is None else len(things)


def apply_dataset_meta(model, meta: dict, source: str = 'the config') -> None:
    """Give a model the dataset meta of its config when the checkpoint's classes differ.

    Args:
        model (nn.Module): Model with a ``dataset_meta`` attribute (set by mmdet's loaders).
        meta (dict): Meta from :func:`dataset_meta_from_cfg`.
        source (str): Where ``meta`` comes from, for the warning. Defaults to 'the config'.
    """
    current = getattr(model, 'dataset_meta', None) or {}
    if tuple(current.get('classes', ())) != tuple(meta['classes']):
        if current.get('classes'):
            warnings.warn(
                f'the checkpoint names {len(current["classes"])} classes but {source} has '
                f'{len(meta["classes"])}; using {source}\'s classes, which the head was built '
                'for (checkpoints without dataset_meta get COCO classes from mmdet)')
        model.dataset_meta = dict(meta)
    else:
        model.dataset_meta = {**current, 'palette': meta['palette']}


def inference_pipeline(pipeline: Sequence[dict]) -> List[dict]:
    """A test pipeline without its annotation loaders, for images that have no annotations.

    mmdet's panoptic test pipelines load the ground truth (``LoadPanopticAnnotations``) so that
    the metric can read it; an image folder has none, so every ``*Annotations`` loader is dropped.

    Args:
        pipeline (Sequence[dict]): Transform configs.

    Returns:
        list[dict]: Copies of the remaining transform configs.
    """
    kept = []
    for transform in pipeline:
        name = str(transform['type']).split('.')[-1]
        if not name.endswith('Annotations'):
            kept.append(copy.deepcopy(transform))
    if not kept or str(kept[0]['type']).split('.')[-1] not in (
            'LoadImageFromFile', 'LoadImageFromNDArray', 'InferencerLoader'):
        raise ValueError('the test pipeline must start with an image loader, got '
                         f'{[t["type"] for t in pipeline]}')
    return kept
