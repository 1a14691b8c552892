# Copyright (c) mmibs contributors. All rights reserved.
"""Targets of a hand-made scene against values computed by hand or by naive loops."""
import math

import numpy as np
import pytest
import torch

from mmibs.registry import TASK_UTILS
from mmibs.testing import synthetic_panoptic_sample

# 128 x 256 input, stride-4 canvas 32 x 64, three levels 16 x 32, 8 x 16, 4 x 8.
H, W = 128, 256
CANVAS = (32, 64)
LEVELS = [(16, 32), (8, 16), (4, 8)]
# A: 32 x 32 box, sqrt(area) = 32, on both boundaries of levels 0 and 1 (inclusive).
# B: 80 x 64 box, sqrt(area) = 71.55, levels 1 and 2.
THING_A = (0, (16, 32, 48, 64))
THING_B = (1, (128, 40, 208, 104))
SCALES = ((1, 32), (32, 80), (64, 200))


def make_generator(mode='all_classes', **kwargs):
    cfg = dict(
        type='PanopticFCNTargetGenerator',
        num_things_classes=2,
        num_stuff_classes=2,
        stuff_mode=mode,
        instance_scales=SCALES)
    cfg.update(kwargs)
    return TASK_UTILS.build(cfg)


def make_scene():
    # stuff: label 2 above row 64, label 3 below; void at rows 120..127
    _, sample = synthetic_panoptic_sample(
        H, W, [THING_A, THING_B], [(2, 0), (3, 64)], num_things_classes=2, void_rows=(120, 128))
    return sample


def original_cornernet_radius(w, h, overlap=0.7):
    """The three roots of the original CornerNet code, each halved once."""
    roots = []
    for a, b, c in [(1, h + w, w * h * (1 - overlap) / (1 + overlap)),
                    (4, 2 * (h + w), (1 - overlap) * w * h),
                    (4 * overlap, -2 * overlap * (h + w), (overlap - 1) * w * h)]:
        roots.append((b + math.sqrt(b * b - 4 * a * c)) / 2)
    return min(roots)


def naive_heatmap(shape, peaks, sigma_factor=3.0):
    """Max over peaks of exp(-d^2 / 2 sigma^2) inside each peak's (2r+1)^2 window."""
    out = np.zeros(shape)
    for cx, cy, r in peaks:
        sigma = (2 * r + 1) / sigma_factor
        for y in range(shape[0]):
            for x in range(shape[1]):
                if abs(x - cx) <= r and abs(y - cy) <= r:
                    v = math.exp(-((x - cx)**2 + (y - cy)**2) / (2 * sigma * sigma))
                    out[y, x] = max(out[y, x], v)
    return out


def naive_bilinear(src, out_h, out_w):
    """PyTorch's bilinear resize (align_corners=False) written as loops."""
    in_h, in_w = src.shape
    out = np.zeros((out_h, out_w))
    for y in range(out_h):
        sy = max((y + 0.5) * in_h / out_h - 0.5, 0)
        y0 = int(sy)
        y1, ly = min(y0 + 1, in_h - 1), sy - y0
        for x in range(out_w):
            sx = max((x + 0.5) * in_w / out_w - 0.5, 0)
            x0 = int(sx)
            x1, lx = min(x0 + 1, in_w - 1), sx - x0
            out[y, x] = ((1 - ly) * ((1 - lx) * src[y0, x0] + lx * src[y0, x1]) + ly *
                         ((1 - lx) * src[y1, x0] + lx * src[y1, x1]))
    return out


def test_cornernet_radius_by_hand():
    from mmibs.models.task_modules.panoptic_fcn_target_generator import \
        cornernet_gaussian_radius
    # w = h = 4: r3 = (-11.2 + sqrt(11.2^2 + 4 * 2.8 * 4.8)) / 2 = 1.0933
    r = cornernet_gaussian_radius(torch.tensor([[4.0, 4.0], [5.0, 4.0], [80.0, 3.0]]), 0.7)
    assert r[0].item() == pytest.approx((-11.2 + math.sqrt(179.2)) / 2, rel=1e-5)
    assert r[1].item() == pytest.approx(original_cornernet_radius(5.0, 4.0), rel=1e-5)
    assert r[2].item() == pytest.approx(original_cornernet_radius(80.0, 3.0), rel=1e-5)


def test_thing_targets_of_hand_made_scene():
    levels = make_generator()(make_scene(), (H, W), CANVAS, LEVELS)
    # level assignment (inclusive ranges): A -> 0, 1; B -> 1, 2
    assert [lv['thing_labels'].tolist() for lv in levels] == [[0], [0, 1], [1]]
    # stride-4 masks are exact rectangles (boundaries are multiples of 4)
    mask_a = torch.zeros(CANVAS)
    mask_a[8:16, 4:12] = 1
    mask_b = torch.zeros(CANVAS)
    mask_b[10:26, 32:52] = 1
    assert torch.equal(levels[0]['thing_masks'], mask_a[None])
    assert torch.equal(levels[1]['thing_masks'], torch.stack([mask_a, mask_b]))
    # mass centers at stride 4: A (7.5, 11.5), B (41.5, 17.5); x 0.5 / 0.25 / 0.125, truncated
    assert levels[0]['thing_centers'].tolist() == [[3, 5]]
    assert levels[1]['thing_centers'].tolist() == [[1, 2], [10, 4]]
    assert levels[2]['thing_centers'].tolist() == [[5, 2]]
    # Gaussian peaks: A at level 0 has box 4 x 4 on the level grid -> radius 1, sigma 1
    heat0 = levels[0]['center_heatmap']
    assert heat0.shape == (2, 16, 32) and heat0[1].sum() == 0
    assert heat0[0, 5, 3].item() == 1.0
    assert heat0[0, 5, 4].item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert heat0[0, 6, 4].item() == pytest.approx(math.exp(-1.0), rel=1e-5)
    assert heat0[0, 5, 5].item() == 0.0 and (heat0[0] > 0).sum() == 9
    # A at level 1: box 2 x 2 -> radius 0, a single 1
    heat1 = levels[1]['center_heatmap']
    assert heat1[0].sum().item() == 1.0 and heat1[0, 2, 1].item() == 1.0
    # B: whole maps against naive drawing with the original-CornerNet radius
    for lv, (hl, wl) in [(1, LEVELS[1]), (2, LEVELS[2])]:
        r = int(original_cornernet_radius(80 * wl / W, 64 * hl / H))
        cx, cy = levels[lv]['thing_centers'][-1].tolist()
        expected = naive_heatmap((hl, wl), [(cx, cy, r)])
        np.testing.assert_allclose(levels[lv]['center_heatmap'][1].numpy(), expected, atol=1e-6)


def test_box_centers_and_capacity():
    levels = make_generator(center_type='box')(make_scene(), (H, W), CANVAS, LEVELS)
    # box centers / 4: A (8, 12), B (42, 18); x 0.5 at level 0
    assert levels[0]['thing_centers'].tolist() == [[4, 6]]
    with pytest.raises(ValueError, match='max_instances'):
        make_generator(max_instances=1)(make_scene(), (H, W), CANVAS, LEVELS)


def naive_region_targets(sem, channel_of_label, num_channels):
    """One-hot at full size -> stride 4 -> each level, clamp, zero below 0.5."""
    one_hot = np.zeros((num_channels, H, W))
    for label, channel in channel_of_label.items():
        if channel is not None:
            one_hot[channel][sem == label] = 1
    soft4 = np.stack([naive_bilinear(c, *CANVAS) for c in one_hot])
    levels = []
    for hl, wl in LEVELS:
        scores = np.stack([naive_bilinear(c, hl, wl) for c in soft4]).clip(max=1)
        scores[scores < 0.5] = 0
        levels.append(scores)
    return soft4, levels


@pytest.mark.parametrize('mode, mapping, channels', [
    ('all_classes', {
        0: 0,
        1: 1,
        2: 2,
        3: 3
    }, 4),
    ('with_thing', {
        0: 0,
        1: 0,
        2: 1,
        3: 2
    }, 3),
    ('stuff_only', {
        0: None,
        1: None,
        2: 0,
        3: 1
    }, 2),
])
def test_stuff_targets_against_naive(mode, mapping, channels):
    sample = make_scene()
    levels = make_generator(mode)(sample, (H, W), CANVAS, LEVELS)
    soft4, expected = naive_region_targets(sample.gt_sem_seg.sem_seg[0].numpy(), mapping, channels)
    # void rows 120..127 carry no target in any channel
    assert soft4[:, 30:, :].sum() == 0
    for lv, exp in zip(levels, expected):
        np.testing.assert_allclose(lv['region_scores'].numpy(), exp, atol=1e-5)
        present = [c for c in range(channels) if exp[c].sum() > 0]
        assert lv['stuff_labels'].tolist() == present
        np.testing.assert_allclose(lv['stuff_masks'].numpy(), soft4[present], atol=1e-5)
        np.testing.assert_array_equal(lv['stuff_region_masks'].numpy(), (exp[present]
                                                                         > 0).astype(np.float32))
    if mode == 'all_classes':
        # B's rows 10..25 at stride 4 hit level 1 (samples at 4i + 1.5) with weight 0.5 at
        # rows 2 and 6: exactly 0.5 survives the < 0.5 cut
        assert levels[1]['region_scores'][1, 2, 10].item() == pytest.approx(0.5)
        assert levels[1]['region_scores'][1, 6, 10].item() == pytest.approx(0.5)


def test_invalid_labels_raise():
    sample = make_scene()
    sample.gt_sem_seg.sem_seg[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r'labels \[7\]'):
        make_generator()(sample, (H, W), CANVAS, LEVELS)
    with pytest.raises(ValueError, match='stuff_mode'):
        make_generator('things')


def test_targets_follow_the_requested_dtype():
    """float64 targets (a float64 model's) equal the float32 ones up to float32 rounding; the
    floating targets carry the dtype, the indices stay integer."""
    generator = make_generator()
    ref = generator(make_scene(), (H, W), CANVAS, LEVELS)
    out = generator(make_scene(), (H, W), CANVAS, LEVELS, dtype=torch.float64)
    for lv32, lv64 in zip(ref, out):
        for key, value in lv64.items():
            if lv32[key].is_floating_point():
                assert value.dtype == torch.float64, key
                torch.testing.assert_close(value.float(), lv32[key], rtol=0, atol=1e-6)
            else:
                assert torch.equal(value, lv32[key]), key
    with pytest.raises(ValueError, match='floating'):
        generator(make_scene(), (H, W), CANVAS, LEVELS, dtype=torch.int64)
