# Copyright (c) mmibs contributors. All rights reserved.
"""Kernel fusion, mask scoring and panoptic composition of Panoptic FCN, without a model."""
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample

from mmibs.models.seg_heads.panoptic_fcn_fusion_head import (compose_panoptic, fuse_stuff_kernels,
                                                             fuse_thing_kernels, score_thing_masks)
from mmibs.registry import MODELS


def naive_fusion(embeds, labels, thr):
    """The release's rule as a loop: row i claims j >= i (cos >= thr, same class); i leads if no
    earlier row claimed it; its members are the claimed j that no earlier row claimed."""
    n = len(embeds)
    unit = [e / max(e.norm().item(), 1e-8) for e in embeds]
    claims = [[
        j >= i and (j == i or float(unit[i] @ unit[j]) >= thr) and int(labels[i]) == int(labels[j])
        for j in range(n)
    ] for i in range(n)]
    groups = []
    for i in range(n):
        count = [sum(claims[r][j] for r in range(i + 1)) for j in range(n)]
        if count[i] < 2:
            groups.append([j for j in range(n) if claims[i][j] and count[j] < 2])
    return groups


def test_fusion_merges_identical_and_keeps_dissimilar():
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.0, 1.0, 0.0])
    embeds = torch.stack([a, 2 * a, b])  # the first two are identical in direction
    fused, labels, scores = fuse_thing_kernels(embeds, torch.tensor([0, 0, 0]),
                                               torch.tensor([0.9, 0.8, 0.7]), 0.97)
    torch.testing.assert_close(fused, torch.stack([1.5 * a, b]))
    assert labels.tolist() == [0, 0] and scores.tolist() == pytest.approx([0.9, 0.7])
    # the same pair with different classes stays apart (CLASS_SPECIFIC)
    fused, labels, _ = fuse_thing_kernels(embeds, torch.tensor([0, 1, 0]),
                                          torch.tensor([0.9, 0.8, 0.7]), 0.97)
    assert labels.tolist() == [0, 1, 0] and len(fused) == 3
    fused, _, _ = fuse_thing_kernels(
        embeds, torch.tensor([0, 1, 0]), torch.tensor([0.9, 0.8, 0.7]), 0.97, class_specific=False)
    assert len(fused) == 2


def test_fusion_matches_naive_rule_on_chains():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(4, 8, generator=g)
    # clusters with small perturbations, so that chains of similar kernels appear
    embeds = torch.cat([base[i] + 0.25 * torch.randn(5, 8, generator=g) for i in range(4)])
    embeds = embeds[torch.randperm(20, generator=g)]
    labels = torch.randint(0, 2, (20, ), generator=g)
    scores = torch.linspace(1, 0.1, 20)
    for thr in (0.9, 0.95, 0.99):
        fused, fused_labels, fused_scores = fuse_thing_kernels(embeds, labels, scores, thr)
        groups = naive_fusion(embeds, labels, thr)
        assert len(fused) == len(groups)
        for row, group in enumerate(groups):
            torch.testing.assert_close(fused[row], embeds[group].mean(0))
            assert fused_labels[row] == labels[group[0]] and fused_scores[row] == scores[group[0]]


def test_stuff_fusion_averages_per_class():
    embeds = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    fused, channels, scores = fuse_stuff_kernels(embeds, torch.tensor([4, 1, 4]),
                                                 torch.tensor([0.2, 0.6, 0.4]))
    assert channels.tolist() == [1, 4]
    torch.testing.assert_close(fused, torch.tensor([[3.0, 2.0], [0.5, 2.5]]))
    torch.testing.assert_close(scores, torch.tensor([0.6, 0.3]))


def test_mask_scoring():
    probs = torch.tensor([[[0.9, 0.7], [0.2, 0.6]], [[0.1, 0.2], [0.3, 0.4]]])
    masks, scores = score_thing_masks(probs, torch.tensor([0.5, 0.8]), 0.5)
    assert masks[0].tolist() == [[True, True], [False, True]] and not masks[1].any()
    assert scores[0].item() == pytest.approx(0.5 * (0.9 + 0.7 + 0.6) / 3, rel=1e-5)
    assert scores[1].item() == 0.0


def rect(h, w, y0, y1, x0, x1):
    m = torch.zeros(h, w, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def test_composition_overlap_score_and_area_rules():
    h, w = 10, 10
    things = torch.stack([
        rect(h, w, 0, 4, 0, 4),  # 16 px, painted as instance 1
        rect(h, w, 0, 4, 2, 6),  # 16 px, 8 taken = 50%: not > 0.5, free half painted
        rect(h, w, 0, 4, 1, 5),  # 16 px, all taken: skipped
        rect(h, w, 6, 8, 6, 8),  # score below INST_THRESH: skipped
        rect(h, w, 0, 0, 0, 0),  # empty: skipped
    ])
    labels = torch.tensor([0, 1, 0, 1, 0])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1, 0.6])
    # region channels (all_classes, 2 things + 2 stuff): 0, 1 are thing channels, never painted
    channel_labels = torch.tensor([-1, -1, 2, 3])
    stuff = torch.full((h, w), 2)
    stuff[8:, :] = 3  # 19 px of class 3 (free, one taken below), >= limit 19
    stuff[4:6, 8:] = 0  # 4 px on a thing channel: void
    stuff[9, 9] = 1
    pan = compose_panoptic(
        things,
        labels,
        scores,
        stuff,
        channel_labels,
        num_classes=4,
        score_thr=0.2,
        overlap_thr=0.5,
        stuff_area_limit=19)
    expected = torch.full((h, w), 2, dtype=torch.int32)
    expected[0:4, 0:4] = 0 + 1 * INSTANCE_OFFSET
    expected[0:4, 4:6] = 1 + 2 * INSTANCE_OFFSET
    expected[8:, :] = 3
    expected[9, 9] = 4  # thing channel -> void (num_classes)
    expected[4:6, 8:] = 4
    assert torch.equal(pan, expected)
    # the class-3 region shrinks below the area limit once a thing takes some of it -> void
    things2 = torch.cat([things, rect(h, w, 8, 10, 0, 2)[None]])
    pan = compose_panoptic(things2, torch.tensor([0, 1, 0, 1, 0, 1]),
                           torch.tensor([0.9, 0.8, 0.7, 0.1, 0.6, 0.5]), stuff, channel_labels, 4,
                           0.2, 0.5, 19)
    assert (pan[8:, 2:] == 4).all() and (pan[8:10, 0:2] == 1 + 3 * INSTANCE_OFFSET).all()
    assert (pan[8:10, 2:] != 3).all()
    # no stuff candidates: only things, the rest void
    pan = compose_panoptic(things, labels, scores, None, channel_labels, 4, 0.2, 0.5, 19)
    assert (pan == 4).sum() == 100 - 24


def test_fusion_head_predict_contract():
    head = MODELS.build(
        dict(
            type='PanopticFCNFusionHead',
            num_things_classes=2,
            num_stuff_classes=2,
            stuff_mode='with_thing',
            test_cfg=dict(similarity_thr=0.97, mask_thr=0.5, stuff_area_limit=4)))
    # F has 3 channels on an 8 x 8 stride-4 map: channel 0 = left object, 1 = right object,
    # 2 = background
    feat = torch.zeros(3, 8, 8)
    feat[0, :, :3] = 1
    feat[1, :, 5:] = 1
    feat[2] = 1 - feat[0] - feat[1]
    big = 20.0
    cand = dict(
        mask_feat=feat,
        # two identical kernels of the left object (fused into one), one of the right object
        thing_embeds=torch.tensor([[big, 0, -big], [big, 0, -big], [0, big, -big]]),
        thing_scores=torch.tensor([0.9, 0.8, 0.7]),
        thing_labels=torch.tensor([0, 0, 1]),
        # with_thing: channel 0 = things (never painted), channel 1 -> class 2
        stuff_embeds=torch.tensor([[0, 0, big], [-big, -big, 0.0]]),
        stuff_scores=torch.tensor([0.5, 0.5]),
        stuff_channels=torch.tensor([1, 0]))
    sample = DetDataSample(metainfo=dict(img_shape=(28, 32), ori_shape=(14, 16)))
    (result, ) = head.predict([cand], [sample], rescale=True)
    pan = result['pan_results'].sem_seg
    ins = result['ins_results']
    assert pan.shape == (1, 14, 16)
    assert ins.masks.shape == (2, 14, 16) and ins.labels.tolist() == [0, 1]
    assert ins.scores.tolist() == pytest.approx([0.9, 0.7], rel=1e-4)  # mask quality ~1
    # left 3/8 of the 32 px crop -> 6 px at half size; right object from 5/8 -> column 10
    assert (pan[0, :, :5] == 0 + INSTANCE_OFFSET).all()
    assert (pan[0, :, 11:] == 1 + 2 * INSTANCE_OFFSET).all()
    assert (pan[0, :, 6:10] == 2).all()
    torch.testing.assert_close(ins.bboxes[0, [0, 2]], torch.tensor([0.0, 6.0]))


@pytest.mark.parametrize('tie_break', ['release', 'label'])
def test_stuff_thing_ties_go_to_stuff_as_released(tie_break):
    """all_classes (Cityscapes): a thing channel and a stuff channel with exactly equal
    probability. The release's argmax runs over trainIds (stuff first) and paints the stuff class;
    ``tie_break='label'`` (mmibs' earlier order, things first) picks the thing channel, which
    paints nothing: void (= num_classes)."""
    head = MODELS.build(
        dict(
            type='PanopticFCNFusionHead',
            num_things_classes=2,
            num_stuff_classes=2,
            stuff_mode='all_classes',
            tie_break=tie_break,
            test_cfg=dict(stuff_area_limit=1)))
    feat = torch.ones(2, 4, 4)
    cand = dict(
        mask_feat=feat,
        thing_embeds=torch.zeros(0, 2),
        thing_scores=torch.zeros(0),
        thing_labels=torch.zeros(0, dtype=torch.long),
        # channel 1 (thing 1) and channel 3 (stuff class 3) tie everywhere; channel 2 is lower
        stuff_embeds=torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]]),
        stuff_scores=torch.tensor([0.5, 0.5, 0.5]),
        stuff_channels=torch.tensor([1, 2, 3]))
    sample = DetDataSample(metainfo=dict(img_shape=(16, 16), ori_shape=(16, 16)))
    (result, ) = head.predict([cand], [sample])
    pan = result['pan_results'].sem_seg
    assert (pan == (3 if tie_break == 'release' else 4)).all()


def test_stuff_argmax_order():
    from mmibs.models.seg_heads.panoptic_fcn_fusion_head import stuff_argmax_order
    channels = torch.tensor([0, 2, 5, 7, 9])  # things 0-7 (T = 8), stuff 8+
    assert stuff_argmax_order(channels, 8, 'all_classes', 'release').tolist() == [4, 0, 1, 2, 3]
    assert stuff_argmax_order(channels, 8, 'all_classes', 'label').tolist() == [0, 1, 2, 3, 4]
    # with_thing: channel 0 is the merged thing class, first in the release too
    assert stuff_argmax_order(channels, 8, 'with_thing', 'release').tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match='tie_break'):
        MODELS.build(dict(type='PanopticFCNFusionHead', tie_break='stuff'))
