# Copyright (c) mmibs contributors. All rights reserved.
"""Mask2FormerIBSHead: mmdet's losses and predictions untouched, IBS equal to a naive loop over
the layer's matched thing queries (``docs/method.md``), the edge cases of the IBS loss."""
import copy
from unittest import mock

import numpy as np
import pytest
import torch
from mmdet.models.dense_heads import MaskFormerHead
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData

import mmibs  # noqa: F401  (registers Mask2FormerIBSHead and IBSLoss)
from mmibs.registry import MODELS
from mmibs.testing import unscaled_sample

H, W = 64, 96  # input size; mask features are H/4 x W/4
CHANNELS = 32
NUM_THINGS = 3
IBS_KEYS = {'loss_ibs'} | {f'd{i}.loss_ibs' for i in range(1, 9)}


def head_cfg(head_type='Mask2FormerIBSHead', num_stuff=2, loss_ibs=None, **extra):
    """A tiny Mask2Former head: 32 channels, 10 queries, 1 encoder layer, the 9 decoder layers."""
    num_classes = NUM_THINGS + num_stuff
    cfg = dict(
        type=head_type,
        in_channels=[8, 16, 32, 64],
        strides=[4, 8, 16, 32],
        feat_channels=CHANNELS,
        out_channels=CHANNELS,
        num_things_classes=NUM_THINGS,
        num_stuff_classes=num_stuff,
        num_queries=10,
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=8),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(
                        embed_dims=CHANNELS,
                        num_heads=4,
                        num_levels=3,
                        num_points=2,
                        dropout=0.0,
                        batch_first=True),
                    ffn_cfg=dict(
                        embed_dims=CHANNELS,
                        feedforward_channels=64,
                        num_fcs=2,
                        ffn_drop=0.0,
                        act_cfg=dict(type='ReLU', inplace=True)))),
            positional_encoding=dict(num_feats=CHANNELS // 2, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=CHANNELS // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=9,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=CHANNELS, num_heads=4, dropout=0.0, batch_first=True),
                cross_attn_cfg=dict(
                    embed_dims=CHANNELS, num_heads=4, dropout=0.0, batch_first=True),
                ffn_cfg=dict(
                    embed_dims=CHANNELS,
                    feedforward_channels=64,
                    num_fcs=2,
                    ffn_drop=0.0,
                    act_cfg=dict(type='ReLU', inplace=True))),
            init_cfg=None),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=2.0,
            reduction='mean',
            class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(
            type='CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            reduction='mean',
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0),
        train_cfg=dict(
            num_points=64,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='ClassificationCost', weight=2.0),
                    dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='MaskPseudoSampler')),
        test_cfg=dict(
            panoptic_on=True,
            semantic_on=False,
            instance_on=True,
            max_per_image=10,
            iou_thr=0.8,
            filter_low_score=True))
    if head_type == 'Mask2FormerIBSHead':
        cfg['loss_ibs'] = loss_ibs or dict(
            type='IBSLoss', partner='pair', num_points=32, loss_weight=50.0)
    cfg.update(extra)
    return ConfigDict(cfg)


def build_head(seed=0, **kwargs):
    torch.manual_seed(seed)
    head = MODELS.build(head_cfg(**kwargs))
    head.init_weights()
    return head


def make_sample(things, stuff_rows, with_semantic=True):
    """A data sample: ``things`` = [(label, (x1, y1, x2, y2))], ``stuff_rows`` =
    [(stuff label, first row, last row)]; other pixels are void (255)."""
    sample = unscaled_sample(H, W)
    masks = np.zeros((len(things), H, W), dtype=np.uint8)
    sem = np.full((H, W), 255, dtype=np.int64)
    for label, top, bottom in stuff_rows:
        sem[top:bottom] = label
    for k, (label, (x1, y1, x2, y2)) in enumerate(things):
        masks[k, y1:y2, x1:x2] = 1
        sem[y1:y2, x1:x2] = label
    sample.gt_instances = InstanceData(
        labels=torch.tensor([t[0] for t in things], dtype=torch.long),
        masks=BitmapMasks(masks, H, W))
    if with_semantic:
        sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
    return sample


def scene(kind, with_semantic=True):
    stuff = [(NUM_THINGS, 0, 24), (NUM_THINGS + 1, 24, 64)] if with_semantic else []
    things = {
        'cars': [(0, (4, 30, 40, 60)), (0, (44, 28, 90, 62)), (2, (60, 2, 80, 20))],
        'people': [(1, (10, 10, 30, 50)), (0, (50, 40, 94, 63))],
        'stuff_only': [],
    }[kind]
    return make_sample(things, stuff, with_semantic)


def make_features(batch_size, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch_size, c, H // s, W // s, generator=gen)
        for c, s in zip([8, 16, 32, 64], [4, 8, 16, 32])
    ]


def naive_focal_to_zero(z):
    p = torch.sigmoid(z)
    return -(1 - 0.25) * p**2 * torch.log(1 - p)


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('num_stuff', [2, 0])
def test_zero_weight_keeps_mmdet_losses_grads_and_predictions(num_stuff):
    """loss_weight=0: every mmdet loss and every gradient equals Mask2FormerHead's on the same
    inputs and seed (IBS draws its partners and points after them); predict() is identical."""
    loss_ibs = dict(type='IBSLoss', partner='random', num_points=32, loss_weight=0.0)
    ibs_head = build_head(num_stuff=num_stuff, loss_ibs=loss_ibs)
    ref_head = build_head(head_type='Mask2FormerHead', num_stuff=num_stuff)
    ref_head.load_state_dict(ibs_head.state_dict(), strict=True)
    with_semantic = num_stuff > 0
    samples = [scene('cars', with_semantic), scene('people', with_semantic)]
    feats = make_features(2)

    torch.manual_seed(3)
    losses = ibs_head.loss(feats, samples)
    torch.manual_seed(3)
    ref_losses = ref_head.loss(feats, samples)
    assert set(losses) == set(ref_losses) | IBS_KEYS
    for key, value in ref_losses.items():
        assert torch.equal(losses[key], value), key
    for key in IBS_KEYS:
        assert losses[key].item() == 0.0 and losses[key].grad_fn is not None
    sum(losses.values()).backward()
    sum(ref_losses.values()).backward()
    ref_params = dict(ref_head.named_parameters())
    for name, param in ibs_head.named_parameters():
        ref_grad = ref_params[name].grad
        assert (param.grad is None) == (ref_grad is None), name
        if ref_grad is not None:
            torch.testing.assert_close(param.grad, ref_grad, rtol=0, atol=0, msg=name)

    ibs_head.eval()
    ref_head.eval()
    with torch.no_grad():
        cls_out, mask_out = ibs_head.predict(feats, samples)
        ref_cls, ref_mask = ref_head.predict(feats, samples)
    assert torch.equal(cls_out, ref_cls) and torch.equal(mask_out, ref_mask)
    # nothing is recorded outside loss()
    assert ibs_head._ibs_record is None


def test_ibs_equals_naive_loop_over_matched_thing_queries():
    """Dense IBS (mean over all H/4 x W/4 positions): recompute every layer's value from the
    assignment mmdet made, with python loops over images, queries and channels."""
    loss_ibs = dict(type='IBSLoss', partner='pair', num_points=None, loss_weight=2.0)
    head = build_head(loss_ibs=loss_ibs)
    samples = [scene('cars'), scene('people')]
    feats = make_features(2)

    assignments, embeds, mask_features = [], [], []
    original = MaskFormerHead.get_targets

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        assignments.append((out[0], out[3]))
        return out

    h1 = head.mask_embed.register_forward_hook(lambda m, a, out: embeds.append(out.detach()))
    h2 = head.pixel_decoder.register_forward_hook(
        lambda m, a, out: mask_features.append(out[0].detach()))
    with mock.patch.object(MaskFormerHead, 'get_targets', spy):
        losses = head.loss(feats, samples)
    h1.remove()
    h2.remove()
    assert len(assignments) == len(embeds) == 10
    feats4 = mask_features[0].double()
    num_thing_gts = sum(int((s.gt_instances.labels < NUM_THINGS).sum()) for s in samples)
    for layer in range(1, 10):
        labels_list, weights_list = assignments[layer]
        total, count = torch.zeros((), dtype=torch.float64), 0
        for b in range(2):
            partner = 1 - b
            for q in range(10):
                if weights_list[b][q] > 0 and labels_list[b][q] < NUM_THINGS:
                    e = embeds[layer][b, q].double()
                    logits = sum(e[c] * feats4[partner, c] for c in range(CHANNELS))
                    total = total + naive_focal_to_zero(logits).mean()
                    count += 1
        # Hungarian matching gives every thing ground truth exactly one query
        assert count == num_thing_gts
        key = 'loss_ibs' if layer == 9 else f'd{layer}.loss_ibs'
        torch.testing.assert_close(losses[key].double(), 2.0 * total / count, rtol=1e-5, atol=1e-7)
    assert 'd0.loss_ibs' not in losses


def test_first_layer_switch_and_point_sampling_keys():
    head = build_head(ibs_skip_first_layer=False)
    torch.manual_seed(0)
    losses = head.loss(make_features(2), [scene('cars'), scene('people')])
    assert {k for k in losses if 'ibs' in k} == IBS_KEYS | {'d0.loss_ibs'}
    for key in IBS_KEYS | {'d0.loss_ibs'}:
        assert torch.isfinite(losses[key]) and losses[key] > 0


def test_gradients_reach_embeddings_and_mask_features_only():
    head = build_head()
    torch.manual_seed(0)
    losses = head.loss(make_features(2), [scene('cars'), scene('people')])
    sum(v for k, v in losses.items() if 'ibs' in k).backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    assert grads['mask_embed.4.weight'].abs().sum() > 0  # the query embedding path
    assert grads['transformer_decoder.layers.8.ffn.layers.1.weight'].abs().sum() > 0
    assert grads['pixel_decoder.mask_feature.weight'].abs().sum() > 0  # partner features
    # the class branch does not take part in IBS
    assert grads['cls_embed.weight'] is None


def test_edge_cases_are_graph_connected_zeros():
    head = build_head()
    # batch of one: no partner image
    torch.manual_seed(0)
    losses = head.loss(make_features(1), [scene('cars')])
    for key in IBS_KEYS:
        assert losses[key].item() == 0.0 and losses[key].grad_fn is not None
    # images with only stuff: no thing queries at all
    losses = head.loss(make_features(2), [scene('stuff_only'), scene('stuff_only')])
    assert losses['loss_dice'] > 0  # the stuff segments are still learned
    for key in IBS_KEYS:
        assert losses[key].item() == 0.0 and losses[key].grad_fn is not None
    sum(losses.values()).backward()
    # one image with things, its partner without: the things meet the partner's features
    losses = head.loss(make_features(2), [scene('cars'), scene('stuff_only')])
    assert all(losses[key] > 0 for key in IBS_KEYS)
    # 'pair' needs crop pairs: an odd batch is a clear error
    with pytest.raises(ValueError, match='batch size 3'):
        head.loss(make_features(3), [scene('cars'), scene('people'), scene('cars')])
    with pytest.raises(RuntimeError, match='call loss'):
        head.loss_by_feat([], [], [], [])


def test_half_precision_autocast():
    head = build_head()
    samples = [scene('cars'), scene('people')]
    torch.manual_seed(0)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(make_features(2), samples)
    for key in IBS_KEYS:
        assert losses[key].dtype == torch.float32 and torch.isfinite(losses[key])
        assert losses[key] > 0
    sum(losses.values()).backward()


def test_config_default_is_cityscapes_release():
    cfg = head_cfg()
    cfg.pop('loss_ibs')
    head = MODELS.build(copy.deepcopy(cfg))
    ibs = head.loss_ibs
    assert (ibs.partner, ibs.num_points, ibs.oversample_ratio, ibs.importance_sample_ratio,
            ibs.loss_weight, ibs.alpha, ibs.gamma) == ('pair', 12544, 3.0, 0.75, 50.0, 0.25, 2.0)
    assert head.ibs_skip_first_layer


@pytest.mark.parametrize('loss_ibs,skip_first', [
    (dict(type='IBSLoss', partner='random', num_points=32, loss_weight=50.0), True),
    (dict(type='IBSLoss', partner='pair', num_points=None, loss_weight=2.0), False),
])
def test_head_is_mmdet_losses_then_ibs_loss_per_layer_bit_for_bit(loss_ibs, skip_first):
    """The head (its IBS machinery lives in QueryIBSMixin) against the composition written out:
    mmdet's Mask2FormerHead.loss on the same weights and seed, then IBSLoss on each layer's
    matched thing embeddings, layers in order, continuing the same RNG stream (partners and
    points are drawn after mmdet's losses). Every loss and every gradient is bit-identical."""
    head = build_head(loss_ibs=loss_ibs, ibs_skip_first_layer=skip_first)
    ref_head = build_head(head_type='Mask2FormerHead')
    ref_head.load_state_dict(head.state_dict(), strict=True)
    ref_ibs = MODELS.build(loss_ibs)
    samples = [scene('cars'), scene('people')]
    feats = make_features(2)

    torch.manual_seed(3)
    losses = head.loss(feats, samples)

    assignments, embeds, mask_features = [], [], []
    original = MaskFormerHead.get_targets

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        assignments.append((out[0], out[3]))
        return out

    h1 = ref_head.mask_embed.register_forward_hook(lambda m, a, out: embeds.append(out))
    h2 = ref_head.pixel_decoder.register_forward_hook(
        lambda m, a, out: mask_features.append(out[0]))
    torch.manual_seed(3)
    with mock.patch.object(MaskFormerHead, 'get_targets', spy):
        ref_losses = ref_head.loss(feats, samples)
        for layer in range(1 if skip_first else 0, 10):
            labels_list, weights_list = assignments[layer]
            things = [
                embeds[layer][b][(weights_list[b] > 0) & (labels_list[b] < NUM_THINGS)]
                for b in range(2)
            ]
            key = 'loss_ibs' if layer == 9 else f'd{layer}.loss_ibs'
            ref_losses[key] = ref_ibs(things, mask_features[0])
    h1.remove()
    h2.remove()
    assert list(losses) == list(ref_losses)  # same keys in the same order
    for key, value in ref_losses.items():
        assert torch.equal(losses[key], value), key
    sum(losses.values()).backward()
    sum(ref_losses.values()).backward()
    ref_params = dict(ref_head.named_parameters())
    for name, param in head.named_parameters():
        ref_grad = ref_params[name].grad
        assert (param.grad is None) == (ref_grad is None), name
        if ref_grad is not None:
            torch.testing.assert_close(param.grad, ref_grad, rtol=0, atol=0, msg=name)
