# Copyright (c) mmibs contributors. All rights reserved.
"""Inference set-up from a config: dataset config, classes on the model, a pipeline without
annotation loaders."""
import warnings

import pytest
from mmengine.config import Config

from mmibs.visualization.inference import apply_dataset_meta, dataset_cfg_of, inference_pipeline

META = dict(classes=('car', 'road'), thing_classes=('car', ), palette=[(1, 2, 3), (4, 5, 6)])


class _Model:
    """Stands for a detector: only ``dataset_meta`` is used."""

    def __init__(self, dataset_meta=None):
        if dataset_meta is not None:
            self.dataset_meta = dataset_meta


def test_dataset_cfg_of_unwraps_dataset_wrappers():
    inner = dict(type='CityscapesPanopticDataset', ann_file='a.json')
    cfg = Config(
        dict(
            train_dataloader=dict(dataset=dict(type='CropSamplingDataset', dataset=inner)),
            test_dataloader=dict(dataset=inner)))
    assert dataset_cfg_of(cfg, 'train') == inner
    copy = dataset_cfg_of(cfg, 'test')
    copy['ann_file'] = 'b.json'  # a copy: the config is not changed
    assert cfg.test_dataloader.dataset.ann_file == 'a.json'
    with pytest.raises(KeyError, match='val_dataloader'):
        dataset_cfg_of(cfg, 'val')
    with pytest.raises(ValueError, match='split'):
        dataset_cfg_of(cfg, 'testing')


def test_apply_dataset_meta_replaces_other_classes_with_a_warning():
    model = _Model(dict(classes=('person', 'rider', 'car')))  # e.g. COCO classes from mmdet
    with pytest.warns(UserWarning, match='3 classes but cfg.py has 2'):
        apply_dataset_meta(model, META, source='cfg.py')
    assert model.dataset_meta == META

    model = _Model()  # a checkpoint without dataset_meta: set silently
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        apply_dataset_meta(model, META)
    assert model.dataset_meta == META


def test_apply_dataset_meta_keeps_matching_classes_and_takes_the_palette():
    model = _Model(dict(classes=['car', 'road'], extra='kept', palette=[(0, 0, 0)] * 2))
    apply_dataset_meta(model, META)
    assert model.dataset_meta == dict(
        classes=['car', 'road'], extra='kept', palette=META['palette'])


def test_inference_pipeline_drops_annotation_loaders():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(64, 32)),
        dict(type='LoadCheckedPanopticAnnotations', with_seg=True),
        dict(type='mmdet.LoadPanopticAnnotations'),
        dict(type='PackDetInputs'),
    ]
    kept = inference_pipeline(pipeline)
    assert [t['type'] for t in kept] == ['LoadImageFromFile', 'Resize', 'PackDetInputs']
    kept[1]['scale'] = (1, 1)  # copies: the config's pipeline is not changed
    assert pipeline[1]['scale'] == (64, 32)
    with pytest.raises(ValueError, match='image loader'):
        inference_pipeline([dict(type='LoadPanopticAnnotations'), dict(type='PackDetInputs')])
