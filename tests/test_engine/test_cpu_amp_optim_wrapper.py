# Copyright (c) mmibs contributors. All rights reserved.
"""CPUAmpOptimWrapper: one bf16-autocast training step of each tiny IBS network.

Every loss must be finite, the mask features must really be bfloat16 under the wrapper's context
(so the check is not vacuous) and the IBS losses must be float32.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mmibs.registry import MODELS
from mmibs.testing import tiny_panoptic_fcn_cfg, two_car_scenes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
M2F_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                      'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')

init_default_scope('mmdet')


def _tiny_mask2former_ibs():
    """The tiny test Mask2Former with the IBS head, for two_car_scenes (2 things, 2 stuff)."""
    model = Config.fromfile(M2F_CONFIG).model  # a ConfigDict: mmdet's MaskFormer deep-copies it
    model['data_preprocessor']['batch_augments'][0]['size'] = (64, 128)
    head = model['panoptic_head']
    head.update(
        type='Mask2FormerIBSHead',
        num_stuff_classes=2,
        loss_ibs=dict(type='IBSLoss', partner='pair', num_points=64, loss_weight=50.0))
    head['loss_cls']['class_weight'] = [1.0] * 4 + [0.1]
    model['panoptic_fusion_head']['num_stuff_classes'] = 2
    return model


def _record_mask_features(model):
    """Dtypes of the tensors the IBS loss receives, recorded by a forward pre-hook."""
    seen = []
    for module in model.modules():
        if type(module).__name__ == 'IBSLoss':
            module.register_forward_pre_hook(
                lambda mod, args, kwargs: seen.append(args[1].dtype), with_kwargs=True)
    return seen


@pytest.mark.parametrize(
    'build', [lambda: tiny_panoptic_fcn_cfg(ibs=True), _tiny_mask2former_ibs],
    ids=['panoptic_fcn', 'mask2former'])
def test_bf16_step_finite_and_ibs_float32(build):
    torch.manual_seed(0)
    model = MODELS.build(build())
    model.train()
    wrapper = build_optim_wrapper(
        model, dict(type='CPUAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    seen = _record_mask_features(model)
    imgs, samples = two_car_scenes()
    before = [p.detach().clone() for p in model.parameters()]
    with wrapper.optim_context(model):
        data = model.data_preprocessor(dict(inputs=list(imgs), data_samples=samples), True)
        losses = model._run_forward(data, mode='loss')
    ibs_keys = [k for k in losses if 'ibs' in k]
    assert ibs_keys, sorted(losses)
    for key, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            assert torch.isfinite(v).all(), f'{key} = {v}'
    for key in ibs_keys:
        assert losses[key].dtype == torch.float32, (key, losses[key].dtype)
    # autocast was on: the IBS inputs came in bfloat16 (convolutions ran in bf16)
    assert torch.bfloat16 in seen, seen
    loss, _ = model.parse_losses(losses)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    wrapper.update_params(loss)
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert sum(changed) > len(changed) // 2
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_rejects_float16():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match='bfloat16'):
        build_optim_wrapper(
            model,
            dict(type='CPUAmpOptimWrapper', dtype='float16', optimizer=dict(type='SGD', lr=1)))
    wrapper = build_optim_wrapper(model,
                                  dict(type='CPUAmpOptimWrapper', optimizer=dict(type='SGD', lr=1)))
    with wrapper.optim_context(model):
        assert model(torch.ones(1, 2)).dtype == torch.bfloat16
    assert model(torch.ones(1, 2)).dtype == torch.float32
