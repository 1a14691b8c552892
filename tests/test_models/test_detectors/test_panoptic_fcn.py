# Copyright (c) mmibs contributors. All rights reserved.
"""Panoptic FCN detector: the shipped R50 base config and its IBS variant, and mmdet's result
contract on a tiny model with IBS. (The R50 training iteration and prediction at 512 x 1024 run on
the shipped Cityscapes crop + IBS config in tests/test_configs/test_configs.py.)"""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from mmibs.registry import MODELS
from mmibs.testing import panoptic_fcn_base_config, tiny_panoptic_fcn_cfg, two_car_scenes

init_default_scope('mmdet')


def r50_model(ibs: bool):
    cfg = copy.deepcopy(panoptic_fcn_base_config().model)
    cfg.backbone.init_cfg = None  # no download in tests
    if ibs:
        # SEGMENT 4.0 x IBS_WEIGHT 1.0 (docs/method.md)
        cfg.panoptic_head.loss_ibs = dict(
            type='IBSLoss', partner='pair', num_points=None, loss_weight=4.0)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def release_optim_wrapper(model):
    # the release's SGD (momentum 0.9, LR 0.02, WD 1e-4) and element-wise clipping at 5.0
    return OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4),
        clip_grad=dict(type='value', clip_value=5.0))


def test_r50_ibs_variant_builds():
    # IBS only adds a loss on the thing kernels: same parameters as the base model. (A training
    # iteration of the R50 on two 512 x 1024 images costs 60-90 s on one core, a third of it in
    # mmcv's CPU DCNv2: it runs once, in tests/test_configs; here the tiny model trains IBS.)
    if MODELS.get('IBSLoss') is None:
        pytest.fail('IBSLoss (mmibs/models/losses/ibs_loss.py) is not registered yet')
    with_ibs, without = r50_model(ibs=True), r50_model(ibs=False)
    assert with_ibs.panoptic_head.loss_ibs is not None and without.panoptic_head.loss_ibs is None
    assert with_ibs.state_dict().keys() == without.state_dict().keys()


def test_tiny_model_result_contract_and_ibs_pair():
    if MODELS.get('IBSLoss') is None:
        pytest.fail('IBSLoss (mmibs/models/losses/ibs_loss.py) is not registered yet')
    torch.manual_seed(0)
    model = MODELS.build(tiny_panoptic_fcn_cfg(deform=True, ibs=True))
    imgs, samples = two_car_scenes()
    log = model.train_step(
        dict(inputs=list(imgs), data_samples=samples), release_optim_wrapper(model))
    assert log['loss_ibs_th'].item() > 0  # a pair of crops: each image's partner is the other
    model.eval()
    results = model.test_step(dict(inputs=list(imgs), data_samples=copy.deepcopy(samples)))
    for result in results:
        assert result.pred_panoptic_seg.sem_seg.shape == (1, 64, 128)
        assert {'masks', 'labels', 'scores', 'bboxes'} <= set(result.pred_instances.keys())
    # _forward: mask features and the per-level maps, no post-processing
    feats = model._forward(torch.zeros(1, 3, 64, 128))
    assert feats[0].shape == (1, 32, 16, 32) and len(feats[1]) == 5


def test_mismatched_class_counts_raise():
    cfg = tiny_panoptic_fcn_cfg()
    cfg['panoptic_fusion_head']['num_stuff_classes'] = 5
    with pytest.raises(ValueError, match='disagree'):
        MODELS.build(cfg)


def test_mmdet_panoptic_pipeline_metric_and_visualizer(tmp_path):
    """Real mmdet data (LoadPanopticAnnotations + PackDetInputs) through train_step and
    test_step; the predictions feed mmdet's CocoPanopticMetric and DetLocalVisualizer."""
    from mmengine.dataset import pseudo_collate

    from mmibs.registry import DATASETS, METRICS, VISUALIZERS
    from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic
    info = write_tiny_coco_panoptic(str(tmp_path), num_images=2, height=64, width=96)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
        dict(type='PackDetInputs')
    ]
    dataset = DATASETS.build(
        dict(
            type='CocoPanopticDataset',
            data_root=info['data_root'],
            ann_file=info['ann_file'],
            metainfo=info['metainfo'],
            data_prefix=dict(img=info['img_prefix'], seg=info['seg_prefix']),
            pipeline=pipeline,
            test_mode=True))
    torch.manual_seed(0)
    model = MODELS.build(tiny_panoptic_fcn_cfg(num_things_classes=2, num_stuff_classes=1))
    log = model.train_step(pseudo_collate([dataset[0], dataset[1]]), release_optim_wrapper(model))
    assert all(torch.isfinite(v) for v in log.values())
    model.eval()
    with torch.no_grad():
        results = model.test_step(pseudo_collate([dataset[0], dataset[1]]))
    metric = METRICS.build(
        dict(
            type='CocoPanopticMetric',
            ann_file=f"{info['data_root']}/{info['ann_file']}",
            seg_prefix=f"{info['data_root']}/{info['seg_prefix']}"))
    metric.dataset_meta = dataset.metainfo
    metric.process({}, [r.to_dict() for r in results])
    scores = metric.compute_metrics(metric.results)
    assert 0 <= scores['PQ'] <= 100 and len(metric.results) == 2
    visualizer = VISUALIZERS.build(dict(type='DetLocalVisualizer', name='panoptic_fcn_test'))
    visualizer.dataset_meta = dataset.metainfo
    visualizer.add_datasample(
        'x', torch.zeros(64, 96, 3, dtype=torch.uint8).numpy(), results[0], draw_gt=False)
    assert visualizer.get_image().shape == (64, 96, 3)
