# Copyright (c) mmibs contributors. All rights reserved.
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import ModulatedDeformConv2dPack

from mmibs.models.layers.panoptic_fcn_layers import (ConvNormReLUStack, add_coord_channels,
                                                     embed_kernels, masks_from_embeddings)
from mmibs.registry import MODELS


def test_coord_channels_values():
    x = torch.randn(2, 3, 4, 5)
    y = add_coord_channels(x)
    assert y.shape == (2, 5, 4, 5) and torch.equal(y[:, :3], x)
    rows = np.array([-1, -1 / 3, 1 / 3, 1])
    cols = np.array([-1, -0.5, 0, 0.5, 1])
    for b in range(2):
        np.testing.assert_allclose(y[b, 3].numpy(), np.repeat(rows[:, None], 5, 1), atol=1e-6)
        np.testing.assert_allclose(y[b, 4].numpy(), np.repeat(cols[None], 4, 0), atol=1e-6)


def test_kernel_head_is_coordconv_stack_then_out_conv():
    head = MODELS.build(
        dict(
            type='PanopticFCNKernelHead',
            in_channels=3,
            feat_channels=4,
            num_convs=1,
            norm_cfg=None))
    x = torch.randn(1, 3, 6, 7)
    conv = head.convs.layers[0].conv
    assert conv.bias is not None  # a bias only without norm, as in the release
    rows = torch.linspace(-1, 1, 6).view(1, 1, 6, 1).expand(1, 1, 6, 7)
    cols = torch.linspace(-1, 1, 7).view(1, 1, 1, 7).expand(1, 1, 6, 7)
    hidden = F.relu(F.conv2d(torch.cat([x, rows, cols], 1), conv.weight, conv.bias, padding=1))
    expected = F.conv2d(hidden, head.out_conv.weight, head.out_conv.bias, padding=1)
    torch.testing.assert_close(head(x), expected)
    assert torch.all(head.out_conv.bias == 0)


def test_position_head_deform_flag_and_init():
    head = MODELS.build(
        dict(
            type='PanopticFCNPositionHead',
            in_channels=16,
            feat_channels=16,
            num_convs=3,
            num_things_classes=3,
            num_region_classes=5,
            deform=True,
            norm_cfg=dict(type='GN', num_groups=4)))
    dcns = [m for m in head.modules() if isinstance(m, ModulatedDeformConv2dPack)]
    assert len(dcns) == 3 and all(m.bias is None for m in dcns)
    assert torch.all(head.out_center.bias == -2.19) and torch.all(head.out_region.bias == -2.19)
    assert head.out_center.weight.std().item() == pytest.approx(0.01, rel=0.3)
    x = torch.randn(2, 16, 8, 12, requires_grad=True)
    center, region = head(x)
    assert center.shape == (2, 3, 8, 12) and region.shape == (2, 5, 8, 12)
    (center.sum() + region.sum()).backward()  # DCNv2 backward on the CPU
    assert all(m.weight.grad is not None and m.conv_offset.weight.grad is not None for m in dcns)
    plain = ConvNormReLUStack(16, 16, 2, deform=False, norm_cfg=dict(type='GN', num_groups=4))
    assert not any(isinstance(m, ModulatedDeformConv2dPack) for m in plain.modules())


def test_feature_encoder_blocks_and_output():
    enc = MODELS.build(
        dict(
            type='PanopticFCNFeatureEncoder',
            in_channels=8,
            fpn_channels=8,
            out_channels=6,
            norm_cfg=dict(type='GN', num_groups=4)))
    # max(1, log2(stride / 4)) conv blocks per level, an upsample after each unless stride 4
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in h.modules()) for h in enc.scale_heads]
    ups = [h.num_upsample for h in enc.scale_heads]
    assert convs == [1, 1, 2, 3] and ups == [0, 1, 2, 3]
    # the release's blocks: conv3x3 (no bias) -> GN -> ReLU -> x2 bilinear
    feat = torch.randn(1, 8, 4, 6)
    block = enc.scale_heads[1].conv[0]
    expected = F.interpolate(
        F.relu(block.gn(F.conv2d(feat, block.conv.weight, None, padding=1))),
        scale_factor=2,
        mode='bilinear',
        align_corners=False)
    torch.testing.assert_close(enc.scale_heads[1](feat), expected)
    feats = [torch.randn(2, 8, 32 // s, 64 // s) for s in (1, 2, 4, 8)]
    out = enc(feats)
    assert out.shape == (2, 6, 32, 64) and out.min() >= 0  # a ReLU follows the last conv
    # the encoder's first conv sees the fused map plus 2 coordinate channels
    assert enc.encoder.layers[0].in_channels == 8 + 2
    with pytest.raises(ValueError, match='expects 4 levels'):
        enc(feats[:3])


def test_embeddings_and_masks_are_dot_products():
    embed = torch.nn.Conv2d(5, 3, 1)
    kernels = torch.randn(4, 5)
    e = embed_kernels(embed, kernels)
    torch.testing.assert_close(e, kernels @ embed.weight[:, :, 0, 0].t() + embed.bias)
    feat = torch.randn(3, 2, 6)
    masks = masks_from_embeddings(e, feat)
    naive = torch.stack([(e[n][:, None, None] * feat).sum(0).flatten() for n in range(4)])
    torch.testing.assert_close(masks, naive)


def _kaiming_uniform_bound(conv, a):
    fan_in = conv.weight[0].numel()
    return (2.0 / (1 + a**2))**0.5 * (3.0 / fan_in)**0.5


@pytest.mark.parametrize('after_init_weights', [False, True])
def test_release_initialisation(after_init_weights):
    """The release's init survives mmengine's init_weights: plain head convs PyTorch's default
    (kaiming-uniform a=sqrt(5), bias uniform), DCNv2 weights kaiming-uniform (ReLU) with zero bias,
    their offset convs PyTorch's default (not mmcv's zeros), semantic-FPN convs c2_msra_fill."""
    torch.manual_seed(0)
    head = MODELS.build(
        dict(
            type='PanopticFCNPositionHead',
            in_channels=64,
            feat_channels=64,
            num_convs=2,
            num_things_classes=3,
            num_region_classes=5,
            deform=True,
            norm_cfg=dict(type='GN', num_groups=4)))
    enc = MODELS.build(
        dict(
            type='PanopticFCNFeatureEncoder',
            in_channels=64,
            fpn_channels=64,
            out_channels=32,
            norm_cfg=dict(type='GN', num_groups=4)))
    if after_init_weights:
        head.init_weights()
        enc.init_weights()
    for dcn in (m for m in head.modules() if isinstance(m, ModulatedDeformConv2dPack)):
        bound = _kaiming_uniform_bound(dcn, 0.0)
        assert 0.9 * bound < dcn.weight.abs().max() <= bound
        offset = dcn.conv_offset
        assert offset.weight.abs().max() > 0 and offset.bias.abs().max() > 0  # not zeroed
        assert offset.weight.abs().max() <= _kaiming_uniform_bound(offset, 5**0.5)
    plain = enc.encoder.layers[0].conv
    bound = _kaiming_uniform_bound(plain, 5**0.5)
    assert 0.9 * bound < plain.weight.abs().max() <= bound
    assert 0 < plain.bias.abs().max() <= bound
    fpn_conv = enc.scale_heads[0].conv[0].conv
    fan_out = fpn_conv.weight.shape[0] * 9
    assert fpn_conv.weight.std().item() == pytest.approx((2.0 / fan_out)**0.5, rel=0.1)


def test_caffe2xavier_is_detectron2_c2_xavier_fill():
    """mmengine's Caffe2Xavier (the FPN's init_cfg) draws what detectron2's c2_xavier_fill
    (kaiming_uniform_(a=1), zero bias) draws from the same seed."""
    from mmengine.model import Caffe2XavierInit
    ours, theirs = torch.nn.Conv2d(16, 8, 3), torch.nn.Conv2d(16, 8, 3)
    torch.manual_seed(3)
    Caffe2XavierInit(layer='Conv2d')(ours)
    torch.manual_seed(3)
    torch.nn.init.kaiming_uniform_(theirs.weight, a=1)
    torch.nn.init.zeros_(theirs.bias)
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=0)
    torch.testing.assert_close(ours.bias, theirs.bias, rtol=0, atol=0)
