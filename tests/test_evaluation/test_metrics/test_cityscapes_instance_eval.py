# Copyright (c) mmibs contributors. All rights reserved.
"""The Cityscapes instance-segmentation evaluation of
configs/_base_/datasets/cityscapes_instance_crop.py on synthetic raw Cityscapes (``gtFine`` as
cityscapesscripts writes it) converted by the real converter: the val dataset and pipeline of the
config, mmdet's CityScapesMetric as configured, the ground truth found from the image paths.
Perfect predictions (the converter's thing instances) score an AP of 1, predictions of the wrong
class 0, and a SOLOv2 config's model feeds the metric."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmibs.registry import DATASETS, METRICS, MODELS
from projects.toy_cityscapes.synthetic import make_converted_cityscapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
BASE = osp.join(REPO, 'configs', '_base_', 'datasets', 'cityscapes_instance_crop.py')
SHRINK = 8  # 1024x2048 recipe -> 128x256 images


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    return make_converted_cityscapes(
        str(tmp_path_factory.mktemp('cs')), num_train=1, num_val=2, height=128, width=256, seed=3)


def val_dataset(cfg: Config, data: dict, with_annotations: bool):
    """The config's val dataset on the synthetic data (test resize / SHRINK)."""
    dataset_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    dataset_cfg.update(
        data_root=data['data_root'], ann_file=data['val_ann_file'],
        data_prefix=data['val_data_prefix'])
    pipeline = dataset_cfg.pipeline
    (resize, ) = [t for t in pipeline if t['type'] == 'Resize']
    resize['scale'] = tuple(s // SHRINK for s in resize['scale'])
    if with_annotations:
        pipeline.insert(
            1, dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True,
                    with_seg=False))
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dataset_cfg)


def build_metric(cfg: Config, data: dict, dataset):
    evaluator = copy.deepcopy(cfg.val_evaluator)
    evaluator['seg_prefix'] = osp.join(data['data_root'], 'gtFine', 'val')
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(evaluator)
    metric.dataset_meta = dataset.metainfo
    return metric


def evaluate(metric, dataset, predict) -> dict:
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        result = dict(img_path=sample.img_path, pred_instances=predict(sample))
        metric.process({}, [result])
    return metric.evaluate(len(dataset))


def test_config_evaluates_instances_against_raw_gtfine(cityscapes):
    cfg = Config.fromfile(BASE)
    assert cfg.val_evaluator.type == 'CityScapesMetric'
    dataset = val_dataset(cfg, cityscapes, with_annotations=True)
    assert len(dataset) == 2
    assert dataset.metainfo['classes'][:8] == ('person', 'rider', 'car', 'truck', 'bus', 'train',
                                               'motorcycle', 'bicycle')
    num_instances = 0

    def perfect(sample):
        gt = sample.gt_instances
        nonlocal num_instances
        num_instances += len(gt)
        return InstanceData(
            masks=torch.from_numpy(gt.masks.to_ndarray()).bool(), labels=gt.labels,
            scores=torch.ones(len(gt)))

    results = evaluate(build_metric(cfg, cityscapes, dataset), dataset, perfect)
    assert num_instances > 0
    assert results['cityscapes/mAP'] == pytest.approx(1.0)
    assert results['cityscapes/AP@50'] == pytest.approx(1.0)

    def wrong_class(sample):
        pred = perfect(sample)
        pred.labels = (pred.labels + 1) % 8
        return pred

    results = evaluate(build_metric(cfg, cityscapes, dataset), dataset, wrong_class)
    assert results['cityscapes/mAP'] == pytest.approx(0.0)


def test_solov2_config_model_feeds_the_metric(cityscapes):
    """The SOLOv2 + IBS config's model (ResNet-18, untrained) on the config's test pipeline:
    its predictions have the image's size and the metric computes."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'solov2',
                 'solov2_r50_8xb4-65k_cityscapes-instance-crop-512x1024-ibs.py'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(depth=18, base_channels=16, init_cfg=None)
    model_cfg.neck.in_channels = [16, 32, 64, 128]
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    model.eval()
    dataset = val_dataset(cfg, cityscapes, with_annotations=False)
    metric = build_metric(cfg, cityscapes, dataset)
    for index in range(len(dataset)):
        item = dataset[index]
        with torch.no_grad():
            (result, ) = model.test_step(dict(inputs=[item['inputs']],
                                              data_samples=[item['data_samples']]))
        pred = result.pred_instances
        assert pred.masks.shape[1:] == (128, 256) and len(pred.masks) == len(pred.scores)
        metric.process({}, [dict(img_path=result.img_path, pred_instances=pred)])
    results = metric.evaluate(len(dataset))
    assert set(results) == {'cityscapes/mAP', 'cityscapes/AP@50'}
    assert 0.0 <= results['cityscapes/mAP'] <= 1.0
