# Copyright (c) mmibs contributors. All rights reserved.
"""A training step of each network with IBS on batches where no image has a thing, or where every
image has exactly one: finite losses, an optimizer step that moves the weights,
and an IBS loss that is exactly zero but part of the graph when there is no thing.

Tiny models (ResNet-18, 16 base channels) on 64x96 synthetic scenes; ~5 s.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

import mmibs  # noqa: F401
from mmibs.registry import MODELS
from mmibs.testing import synthetic_panoptic_sample, tiny_panoptic_fcn_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
M2F_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                      'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')
H, W = 64, 96


def _batch(kind: str, num_things_classes: int, stuff_labels) -> dict:
    """Two scenes: stuff bands only (``'none'``) or one thing of another class each (``'one'``)."""
    things = {
        'none': [[], []],
        'one': [[(0, (10, 12, 40, 44))], [(1, (50, 8, 70, 56))]],
    }[kind]
    bands = [(label, i * H // len(stuff_labels)) for i, label in enumerate(stuff_labels)]
    imgs, samples = [], []
    for k in range(2):
        img, sample = synthetic_panoptic_sample(H, W, things[k], bands, num_things_classes, seed=k)
        imgs.append(img)
        samples.append(sample)
    return dict(inputs=imgs, data_samples=samples)


def _m2f_ibs():
    cfg = Config.fromfile(M2F_CONFIG)
    cfg.model.panoptic_head.type = 'Mask2FormerIBSHead'
    cfg.model.panoptic_head.loss_ibs = dict(
        type='IBSLoss', partner='pair', num_points=64, loss_weight=50.0)
    cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)  # no SyncBN on one process
    # IBS on decoder layers 1..L (not 0): 'd1.loss_ibs' and the last layer's 'loss_ibs'
    return MODELS.build(cfg.model), ('loss_ibs', 'd1.loss_ibs'), 2, [2]


def _panoptic_fcn_ibs():
    return MODELS.build(tiny_panoptic_fcn_cfg(ibs=True)), ('loss_ibs_th', ), 2, [2, 3]


@pytest.mark.parametrize('build', [_m2f_ibs, _panoptic_fcn_ibs], ids=['mask2former', 'pfcn'])
@pytest.mark.parametrize('kind', ['none', 'one'])
def test_train_step_on_edge_batches(build, kind):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model, ibs_keys, num_things, stuff = build()
    model.train()
    batch = _batch(kind, num_things, stuff)

    # the losses themselves (graph attached)
    data = model.data_preprocessor(copy.deepcopy(batch), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    for key in ibs_keys:
        loss = losses[key]
        assert loss.grad_fn is not None, key
        if kind == 'none':
            assert loss.item() == 0.0, key  # no thing embedding: an exact, graph-connected zero
        else:
            assert loss.item() > 0.0, key  # each thing meets the other image's features
    assert all(torch.isfinite(v).all() for v in losses.values() if isinstance(v, torch.Tensor))

    # a full optimizer step
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log_vars = model.train_step(batch, optim)
    assert torch.isfinite(torch.as_tensor(float(log_vars['loss'])))
    after = dict(model.named_parameters())
    assert all(torch.isfinite(p).all() for p in after.values())
    assert any(not torch.equal(before[n], after[n]) for n in before)
