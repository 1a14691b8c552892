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
    conv = head.convs.layers[0]
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
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in h) for h in enc.scale_heads]
    ups = [sum(isinstance(m, torch.nn.Upsample) for m in h) for h in enc.scale_heads]
    assert convs == [1, 1, 2, 3] and ups == [0, 1, 2, 3]
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
