# Copyright (c) mmibs contributors. All rights reserved.
"""Every shipped dataset config builds its train and val datasets on converted synthetic data, and
its training pipeline has the released steps."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmibs.registry import DATASETS
from projects.toy_cityscapes.synthetic import make_converted_cityscapes, make_converted_vistas

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _shrink(obj, factor):
    """Divide recipe sizes by ``factor`` (128x256 synthetic images for 1024x2048 recipes)."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key in ('scale', 'crop_size', 'scales', 'short_edge_range',
                       'short_edge_choices') and isinstance(value, (list, tuple)):
                value = type(value)(int(v) // factor for v in value)
            elif key in ('side_min', 'side_max', 'overall_max', 'max_size') and value:
                value = value // factor
            elif key == 'scale' and isinstance(value, int):
                value = value // factor
            out[key] = _shrink(value, factor)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_shrink(v, factor) for v in obj)
    return obj


NAMES = [
    'cityscapes_panoptic_crop', 'cityscapes_panoptic_full', 'cityscapes_panoptic_cropsampling',
    'mapillary_panoptic_crop', 'mapillary_panoptic_full', 'mapillary_panoptic_cropsampling',
    'mapillary_instance_crop'
]
#: The released Panoptic FCN-IBS Vistas INPUT.MIN_SIZE_TRAIN ("choice").
VISTAS_SHORT_EDGES = (1024, 1152, 1280, 1408, 1536, 1664, 1792, 1920, 2048)


def _train_pipeline(cfg: Config) -> list:
    dataset = cfg.train_dataloader.dataset
    return dataset.pipeline


@pytest.mark.parametrize('name', NAMES)
def test_training_pipeline_steps(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', name + '.py'))
    types = [t['type'] for t in _train_pipeline(cfg)]
    test_types = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    # Panoptic annotations are always loaded through the checked loader.
    assert 'LoadPanopticAnnotations' not in types + test_types
    if 'panoptic' in name:
        assert 'LoadCheckedPanopticAnnotations' in types and \
            'LoadCheckedPanopticAnnotations' in test_types
    # After every crop the instances it emptied are dropped (the releases' mappers).
    if 'crop' in name:
        crop = types.index('RandomCropWithInstance')
        assert types[crop + 1] == 'FilterEmptyInstances'
        crop_cfg = _train_pipeline(cfg)[crop]
        assert crop_cfg.get('include_crowd', True)  # crowd regions are candidates, as released
    else:
        assert 'FilterEmptyInstances' not in types
    # Vistas: the short side is drawn from the release's list, not from a range.
    if name.startswith('mapillary'):
        resizes = [t for t in _train_pipeline(cfg) if t['type'] == 'RandomShortestEdgeResize']
        resizes += [
            t['stuff_resize'] for t in _train_pipeline(cfg) if t['type'] == 'ResizeToSegmentScale'
        ]
        assert len(resizes) == 1
        assert tuple(resizes[0]['short_edge_choices']) == VISTAS_SHORT_EDGES
        assert resizes[0]['max_size'] == 4096 and 'short_edge_range' not in resizes[0]
    if 'cropsampling' in name:
        assert cfg.train_dataloader.dataset.get('include_crowd', True)


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    return dict(
        cityscapes=make_converted_cityscapes(str(tmp_path_factory.mktemp('cs')), 2, 1, 128, 256),
        mapillary=make_converted_vistas(
            str(tmp_path_factory.mktemp('vistas')), 2, 1, 128, 256, instances=True))


@pytest.mark.parametrize('name', NAMES)
def test_dataset_config_builds(synthetic, name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', name + '.py'))
    data = synthetic[name.split('_')[0]]
    factor = 8
    instance = 'instance' in name
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        loader = _shrink(loader.to_dict(), factor)
        outer = loader['dataset']
        inner = outer.get('dataset', outer)
        inner.update(
            data_root=data['data_root'],
            ann_file=data[f'{split}_instance_file' if instance else f'{split}_ann_file'],
            data_prefix=data[f'{split}_data_prefix'])
        if instance:
            inner['data_prefix'] = dict(img=inner['data_prefix']['img'])
        with DefaultScope.overwrite_default_scope('mmdet'):
            dataset = DATASETS.build(outer)
            item = dataset[0]
        samples = item if isinstance(item, list) else [item]
        assert len(samples) == (2 if 'cropsampling' in name and split == 'train' else 1)
        for sample in samples:
            assert isinstance(sample['inputs'], torch.Tensor) and sample['inputs'].shape[0] == 3
            if split == 'train' and 'crop' in name:
                crop = cfg.crop_size
                assert all(s <= c // factor for s, c in zip(sample['inputs'].shape[1:], crop))
            if not instance:
                assert sample['data_samples'].gt_sem_seg.sem_seg.shape[1:] == \
                    sample['inputs'].shape[1:]
    assert cfg.val_evaluator['ann_file'].startswith(cfg.data_root)
