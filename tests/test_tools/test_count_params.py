# Copyright (c) mmibs contributors. All rights reserved.
"""tools/analysis_tools/count_params.py on the Cityscapes R50 Panoptic FCN, against the count
implied by the release's architecture, computed here layer by layer."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'count_params.py')
CONFIG = osp.join(REPO, 'configs', '_base_', 'models', 'panoptic-fcn_r50_fpn.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('count_params', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def conv(c_in, c_out, k, bias):
    return c_in * c_out * k * k + (c_out if bias else 0)


def reference_resnet50(with_bn_affine=True):
    """ResNet-50 trunk (no fc). detectron2 keeps FrozenBN's affine terms as buffers."""
    bn = (lambda c: 2 * c) if with_bn_affine else (lambda c: 0)
    total = conv(3, 64, 7, False) + bn(64)
    c_in = 64
    for mid, blocks in [(64, 3), (128, 4), (256, 6), (512, 3)]:
        out = 4 * mid
        for b in range(blocks):
            total += conv(c_in, mid, 1, False) + conv(mid, mid, 3, False) + conv(mid, out, 1, False)
            total += bn(mid) * 2 + bn(out)
            if b == 0:
                total += conv(c_in, out, 1, False) + bn(out)
            c_in = out
    return total


def reference_panoptic_fcn(things=8, regions=19, c=256, c_e=256, with_bn_affine=True):
    """The release's PanopticFCN-R50-cityscapes architecture, layer by layer."""
    gn = 2 * c
    fpn = sum(conv(ci, c, 1, True) for ci in (256, 512, 1024, 2048)) + 4 * conv(c, c, 3, True)
    fpn += 2 * conv(c, c, 3, True)  # LastLevelP6P7fromP5
    semantic_fpn = (1 + 1 + 2 + 3) * (conv(c, c, 3, False) + gn)
    encoder = conv(c + 2, c_e, 3, True) + 2 * conv(c_e, c_e, 3, True)
    # ModulatedDeformConvWithOff: offset/mask conv (27 channels, bias) + DCN (no bias) + GN
    position = 3 * (conv(c, 27, 3, True) + conv(c, c, 3, False) + gn)
    position += conv(c, things, 3, True) + conv(c, regions, 3, True)
    kernel = conv(c + 2, c, 3, False) + gn + 2 * (conv(c, c, 3, False) + gn) + conv(c, c, 3, True)
    generators = 2 * conv(c, c_e, 1, True)
    return (reference_resnet50(with_bn_affine) + fpn + semantic_fpn + encoder + position + kernel +
            generators)


def test_count_params_matches_reference_architecture(capsys):
    counts = load_tool().main([CONFIG])
    printed = capsys.readouterr().out
    reference = reference_panoptic_fcn()
    assert f'{counts["total"]:,d}' in printed and 'backbone' in printed
    assert counts['total'] == pytest.approx(reference, rel=0.01)
    assert counts['total'] == reference == 38_457_004
    # detectron2's parameters() leave out FrozenBN's affine terms (buffers there): 0.14 % less
    assert counts['total'] - reference_panoptic_fcn(with_bn_affine=False) == 53_120
    assert counts['backbone'] + counts['neck'] + counts['panoptic_head'] == counts['total']
    # frozen: stem, res2 and every BN of the backbone
    assert counts['total'] - counts['trainable'] == 275_520


def test_count_params_cfg_options_and_depth(capsys):
    tool = load_tool()
    counts = tool.main([
        CONFIG, '--depth', '3', '--cfg-options',
        'model.panoptic_head.head_module.feature_encoder.out_channels=64'
    ])
    # C_e = 64 (the release's default): encoder convs and both kernel generators shrink
    assert counts['total'] == reference_panoptic_fcn(c_e=64)
    assert counts['panoptic_head.head_module.thing_embed'] == conv(256, 64, 1, True)
    with pytest.raises(ValueError, match='depth'):
        tool.count_parameters(None, depth=0)
