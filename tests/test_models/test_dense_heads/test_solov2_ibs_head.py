# Copyright (c) mmibs contributors. All rights reserved.
"""SOLOV2IBSHead: without IBS it is mmdet's SOLOV2Head bit for bit; with IBS mmdet's losses are
untouched and ``loss_ibs`` equals a naive loop over images, positive cells and partners
(``docs/method.md``, IBS in SOLOv2), values and gradients."""
from unittest import mock

import numpy as np
import pytest
import torch
from mmdet.models.dense_heads import SOLOV2Head
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmibs  # noqa: F401  (registers SOLOV2IBSHead and IBSLoss)
from mmibs.registry import MODELS
from mmibs.testing import unscaled_sample

H, W = 128, 128  # input size; mask features are H/4 x W/4
IN_CHANNELS = 16
KERNEL_CHANNELS = 16  # E: mask-feature channels = dynamic 1x1 kernel length
NUM_GRIDS = [12, 10, 8, 6, 4]
NUM_CLASSES = 3


def head_cfg(head_type='SOLOV2IBSHead', loss_ibs='default', **extra):
    """A tiny SOLOv2 head: 2 stacked convs, E = 16, grids 12 ... 4 on 5 levels."""
    cfg = dict(
        type=head_type,
        num_classes=NUM_CLASSES,
        in_channels=IN_CHANNELS,
        feat_channels=32,
        stacked_convs=2,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 32), (16, 64), (32, 128), (64, 256), (128, 1024)),
        pos_scale=0.2,
        num_grids=NUM_GRIDS,
        cls_down_index=0,
        mask_feature_head=dict(
            feat_channels=16,
            start_level=0,
            end_level=3,
            out_channels=KERNEL_CHANNELS,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)),
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        test_cfg=dict(
            nms_pre=50, score_thr=0.0, mask_thr=0.5, filter_thr=0.0, kernel='gaussian',
            sigma=2.0, max_per_img=10))
    if head_type == 'SOLOV2IBSHead':
        cfg['loss_ibs'] = (
            dict(type='IBSLoss', partner='pair', num_points=None, loss_weight=3.0)
            if loss_ibs == 'default' else loss_ibs)
    cfg.update(extra)
    return ConfigDict(cfg)


def build_head(seed=0, **kwargs):
    torch.manual_seed(seed)
    head = MODELS.build(head_cfg(**kwargs))
    head.init_weights()
    return head


SCENES = {
    # (label, (x1, y1, x2, y2)): sqrt(area) 50, 24 and 110 -> levels {1, 2}, {0, 1}, {2, 3}
    'cars': [(0, (10, 60, 60, 110)), (1, (80, 20, 100, 50)), (2, (4, 8, 124, 108))],
    'people': [(1, (20, 20, 44, 90)), (0, (70, 64, 126, 120))],
    'empty': [],
}


def make_sample(kind):
    things = SCENES[kind]
    sample = unscaled_sample(H, W)
    masks = np.zeros((len(things), H, W), dtype=np.uint8)
    for k, (_, (x1, y1, x2, y2)) in enumerate(things):
        masks[k, y1:y2, x1:x2] = 1
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([t[1] for t in things], dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor([t[0] for t in things], dtype=torch.long),
        masks=BitmapMasks(masks, H, W))
    return sample


def make_features(batch_size, seed=1):
    """FPN-like inputs at strides 4 ... 64, each (B, IN_CHANNELS, H / s, W / s)."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch_size, IN_CHANNELS, H // s, W // s, generator=gen)
        for s in (4, 8, 16, 32, 64))


def naive_focal_to_zero(z):
    p = torch.sigmoid(z)
    return -(1 - 0.25) * p**2 * torch.log(1 - p)


def assert_same_grads(head, ref_head):
    ref_params = dict(ref_head.named_parameters())
    for name, param in head.named_parameters():
        ref_grad = ref_params[name].grad
        assert (param.grad is None) == (ref_grad is None), name
        if ref_grad is not None:
            assert torch.equal(param.grad, ref_grad), name


# ------------------------------------------------------------------------------------------------
def test_without_ibs_it_is_mmdet_bit_for_bit():
    """loss_ibs=None: same parameters, losses, parameter and input gradients and predictions as
    mmdet's SOLOV2Head on the same seed and inputs."""
    head = build_head(loss_ibs=None)
    ref_head = build_head(head_type='SOLOV2Head')
    assert type(ref_head) is SOLOV2Head and head.loss_ibs is None
    for (name, p), (ref_name, ref_p) in zip(head.state_dict().items(),
                                            ref_head.state_dict().items()):
        assert name == ref_name and torch.equal(p, ref_p), name
    samples = [make_sample('cars'), make_sample('people')]
    feats = [f.requires_grad_() for f in make_features(2)]
    ref_feats = [f.detach().clone().requires_grad_() for f in feats]

    torch.manual_seed(3)
    losses = head.loss(feats, samples)
    torch.manual_seed(3)
    ref_losses = ref_head.loss(ref_feats, samples)
    assert set(losses) == set(ref_losses) == {'loss_mask', 'loss_cls'}
    for key, value in ref_losses.items():
        assert torch.equal(losses[key], value), key
    sum(losses.values()).backward()
    sum(ref_losses.values()).backward()
    assert_same_grads(head, ref_head)
    for f, ref_f in zip(feats, ref_feats):
        assert torch.equal(f.grad, ref_f.grad)

    head.eval()
    ref_head.eval()
    with torch.no_grad():
        (result, ) = head.predict(make_features(1), [make_sample('cars')])
        (ref_result, ) = ref_head.predict(make_features(1), [make_sample('cars')])
    for key in ('scores', 'labels', 'masks'):
        assert torch.equal(result.get(key), ref_result.get(key)), key


def test_with_ibs_mmdet_losses_are_unchanged():
    """IBS on (random partner, drawn after mmdet's losses): loss_mask and loss_cls are still
    mmdet's bit for bit, and loss_ibs is added."""
    head = build_head(loss_ibs=dict(type='IBSLoss', partner='random', loss_weight=3.0))
    ref_head = build_head(head_type='SOLOV2Head')
    samples = [make_sample('cars'), make_sample('people'), make_sample('cars')]
    feats = make_features(3)
    torch.manual_seed(5)
    losses = head.loss(feats, samples)
    torch.manual_seed(5)
    ref_losses = ref_head.loss(feats, samples)
    assert set(losses) == set(ref_losses) | {'loss_ibs'}
    for key, value in ref_losses.items():
        assert torch.equal(losses[key], value), key
    assert losses['loss_ibs'] > 0


@pytest.mark.parametrize('partner', ['pair', 'all'])
def test_ibs_equals_naive_loop_over_positive_cells(partner):
    """loss_ibs and its gradients (kernels and mask features) against a per-image loop: every
    positive cell that mmdet's target assignment returns, its kernel times the partner's mask
    features by hand, focal loss to zero, normalised by mmdet's num_pos."""
    weight = 2.5
    head = build_head(loss_ibs=dict(type='IBSLoss', partner=partner, loss_weight=weight))
    batch = 4 if partner == 'all' else 2
    samples = [make_sample(k) for k in ('cars', 'people', 'cars', 'empty')[:batch]]
    kernels, cls_preds, mask_feats = head(make_features(batch))

    assignments = []
    original = SOLOV2Head._get_targets_single

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        assignments.append((out[2], out[3]))
        return out

    with mock.patch.object(SOLOV2Head, '_get_targets_single', spy):
        losses = head.loss_by_feat(
            kernels, cls_preds, mask_feats,
            batch_gt_instances=[s.gt_instances for s in samples],
            batch_img_metas=[s.metainfo for s in samples])
    assert len(assignments) == batch

    reference, count = 0.0, 0
    for i, (pos_masks, pos_indexes) in enumerate(assignments):
        partners = [i ^ 1] if partner == 'pair' else [j for j in range(batch) if j != i]
        for level, indexes in enumerate(pos_indexes):
            grid = NUM_GRIDS[level]
            for index in indexes:
                row, col = divmod(index, grid)
                kernel = kernels[level][i, :, row, col]  # (E, )
                per_partner = []
                for j in partners:
                    logits = sum(kernel[c] * mask_feats[j, c] for c in range(KERNEL_CHANNELS))
                    per_partner.append(naive_focal_to_zero(logits).mean())
                reference = reference + sum(per_partner) / len(per_partner)
                count += 1
    num_pos = sum(int(m.sum()) for masks, _ in assignments for m in masks)
    assert count >= 10 and num_pos >= 10  # every scene with things has several positive cells
    reference = weight * reference / num_pos
    torch.testing.assert_close(losses['loss_ibs'], reference, rtol=1e-5, atol=1e-7)

    inputs = list(kernels) + [mask_feats]
    # levels without a positive cell (here the last) get zero gradients
    grads = torch.autograd.grad(losses['loss_ibs'], inputs, retain_graph=True,
                                materialize_grads=True)
    ref_grads = torch.autograd.grad(reference, inputs, materialize_grads=True)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-9)
    assert ref_grads[-1].abs().sum() > 0


def test_ibs_gradients_reach_kernel_branch_and_mask_features_only():
    head = build_head()
    losses = head.loss(make_features(2), [make_sample('cars'), make_sample('people')])
    losses['loss_ibs'].backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    assert grads['conv_kernel.weight'].abs().sum() > 0
    assert grads['kernel_convs.0.conv.weight'].abs().sum() > 0
    assert grads['mask_feature_head.conv_pred.conv.weight'].abs().sum() > 0
    assert grads['conv_cls.weight'] is None  # the class branch does not take part in IBS


def test_edge_cases_are_graph_connected_zeros_or_clear_errors():
    head = build_head()
    # batch of one: no partner image
    losses = head.loss(make_features(1), [make_sample('cars')])
    assert losses['loss_ibs'].item() == 0.0 and losses['loss_ibs'].grad_fn is not None
    # no instance in the batch
    losses = head.loss(make_features(2), [make_sample('empty'), make_sample('empty')])
    assert losses['loss_ibs'].item() == 0.0 and losses['loss_ibs'].grad_fn is not None
    sum(losses.values()).backward()
    # things in one image, none in its partner: the kernels meet the empty image's features
    losses = head.loss(make_features(2), [make_sample('cars'), make_sample('empty')])
    assert losses['loss_ibs'] > 0
    # 'pair' needs crop pairs: an odd batch is a clear error
    with pytest.raises(ValueError, match='batch size 3'):
        head.loss(make_features(3), [make_sample('cars')] * 3)


def test_refuses_dynamic_conv_size_other_than_1():
    with pytest.raises(ValueError, match='dynamic_conv_size=3'):
        MODELS.build(head_cfg(dynamic_conv_size=3))
    # without IBS the head is mmdet's, whatever it supports
    head = MODELS.build(head_cfg(loss_ibs=None, dynamic_conv_size=3))
    assert head.kernel_out_channels == KERNEL_CHANNELS * 9


def test_half_precision_autocast():
    head = build_head()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(make_features(2), [make_sample('cars'), make_sample('people')])
    assert losses['loss_ibs'].dtype == torch.float32 and losses['loss_ibs'] > 0
    sum(losses.values()).backward()
