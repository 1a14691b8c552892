# Copyright (c) mmibs contributors. All rights reserved.
"""The compiled mmcv ops that mmibs' networks need run forward and backward on the CPU."""
import torch

import mmibs  # noqa: F401
from mmcv.ops import ModulatedDeformConv2dPack, MultiScaleDeformableAttention


def test_modulated_deform_conv_forward_backward():
    torch.manual_seed(0)
    conv = ModulatedDeformConv2dPack(4, 6, kernel_size=3, padding=1, deform_groups=1)
    x = torch.randn(2, 4, 8, 10, requires_grad=True)
    y = conv(x)
    assert y.shape == (2, 6, 8, 10)
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert conv.weight.grad.abs().sum() > 0
    # Zero offsets and a mask of 0.5 (sigmoid(0), the pack's initialisation) make it a plain
    # convolution scaled by 0.5: an independent check of the compiled CPU kernel.
    plain = torch.nn.functional.conv2d(x, conv.weight, conv.bias * 0, padding=1)
    ref = plain * 0.5 + conv.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)


def test_multi_scale_deformable_attention_forward_backward():
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(embed_dims=16, num_heads=2, num_levels=2, num_points=2,
                                         batch_first=True)
    shapes = torch.tensor([[4, 6], [2, 3]])
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    num_value = int(shapes.prod(1).sum())
    value = torch.randn(2, num_value, 16, requires_grad=True)
    query = torch.randn(2, 5, 16, requires_grad=True)
    ref_points = torch.rand(2, 5, 2, 2)
    out = attn(query=query, value=value, reference_points=ref_points, spatial_shapes=shapes,
               level_start_index=start)
    assert out.shape == (2, 5, 16)
    out.sum().backward()
    assert value.grad.abs().sum() > 0 and query.grad.abs().sum() > 0
