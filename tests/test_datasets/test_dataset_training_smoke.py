# Copyright (c) mmibs contributors. All rights reserved.
"""A few training iterations with each Cityscapes pipeline (crop, full, crop sampling).

Real path: raw synthetic Cityscapes -> cityscapesscripts-based converter -> the shipped dataset
configs (sizes divided by 8 for 128x256 images) -> mmengine's Runner with a tiny Mask2Former
(tests/data/configs, ResNet-18 with 16 base channels, 10 queries, 32 feature channels).
"""
import copy
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from projects.toy_cityscapes.synthetic import make_converted_cityscapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_MODEL = osp.join(REPO, 'tests', 'data', 'configs',
                      'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')
SHRINK = 8  # 1024x2048 recipe -> 128x256 images


def _shrink(obj):
    """Divide the recipe's sizes by SHRINK (scale, crop_size, crop-sampling limits, scales)."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key in ('scale', 'crop_size', 'scales') and isinstance(value, (list, tuple)):
                value = type(value)(int(v) // SHRINK for v in value)
            elif key in ('side_min', 'side_max', 'overall_max'):
                value = value // SHRINK
            out[key] = _shrink(value)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_shrink(v) for v in obj)
    return obj


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_converted_cityscapes(
        str(tmp_path_factory.mktemp('cs')), num_train=2, num_val=1, height=128, width=256, seed=7)


def _config(data, dataset_config, work_dir, pad_to_crop):
    cfg = Config.fromfile(TINY_MODEL)
    dataset_cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', dataset_config))
    loader = _shrink(dataset_cfg.to_dict()['train_dataloader'])
    inner = loader['dataset'].get('dataset', loader['dataset'])  # crop sampling wraps a dataset
    inner.update(
        data_root=data['data_root'],
        ann_file=data['train_ann_file'],
        data_prefix=data['train_data_prefix'])
    loader.update(num_workers=0, persistent_workers=False)
    cfg.train_dataloader = loader
    model = copy.deepcopy(cfg.model)
    model.panoptic_head.update(
        num_things_classes=8, num_stuff_classes=11, loss_cls=dict(class_weight=[1.0] * 19 + [0.1]))
    model.panoptic_fusion_head.update(num_things_classes=8, num_stuff_classes=11)
    if pad_to_crop:  # crops may come out smaller than 64x128: pad the batch to the crop size
        model.data_preprocessor.batch_augments[0]['size'] = (64, 128)
    else:
        model.data_preprocessor.batch_augments = None
    cfg.model = model
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=1000)
    cfg.param_scheduler = []
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader', 'test_evaluator',
                'test_cfg'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.pop('visualization', None)
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize(
    'dataset_config,pad_to_crop,images_per_iter',
    [
        ('cityscapes_panoptic_crop.py', True, 2),
        ('cityscapes_panoptic_full.py', False, 2),
        ('cityscapes_panoptic_cropsampling.py', True, 2),  # batch_size 1 pair = 2 images
    ])
def test_train_two_iterations(data, tmp_path, dataset_config, pad_to_crop, images_per_iter):
    runner = Runner.from_cfg(_config(data, dataset_config, tmp_path, pad_to_crop))
    seen = []
    original = runner.model.data_preprocessor.forward

    def record(batch, training=False):
        seen.append(len(batch['inputs']))
        return original(batch, training)

    runner.model.data_preprocessor.forward = record
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)
    assert seen == [images_per_iter] * 2
