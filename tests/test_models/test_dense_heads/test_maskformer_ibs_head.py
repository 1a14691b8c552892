# Copyright (c) mmibs contributors. All rights reserved.
"""MaskFormerIBSHead: IBS off is mmdet's MaskFormerHead bit for bit; IBS on equals a naive
per-image reference (python loops over layers, images, thing queries, partners and channels) in
value and in gradient; every decoder layer gets IBS (``docs/method.md``)."""
import copy
from unittest import mock

import pytest
import torch
from mmdet.models.dense_heads import MaskFormerHead
from mmengine.config import ConfigDict

import mmibs  # noqa: F401  (registers MaskFormerIBSHead and IBSLoss)
from mmibs.registry import MODELS

# same folder: the scenes (3 thing classes, 64x96 images) of the Mask2Former head's tests
from test_mask2former_ibs_head import H, W, make_features, scene  # noqa: E402,I001

CHANNELS = 32
NUM_THINGS = 3
NUM_LAYERS = 3  # decoder layers = prediction layers of MaskFormer
NUM_QUERIES = 10
IBS_KEYS = {'loss_ibs'} | {f'd{i}.loss_ibs' for i in range(NUM_LAYERS - 1)}


def head_cfg(head_type='MaskFormerIBSHead', num_stuff=2, loss_ibs='default', **extra):
    """A tiny MaskFormer head (mmdet's maskformer_r50 COCO head, narrowed): 32 channels,
    10 queries, 1 encoder layer, 3 decoder layers, dropout 0.1 as in the real head."""
    num_classes = NUM_THINGS + num_stuff

    def attn():
        return dict(embed_dims=CHANNELS, num_heads=4, dropout=0.1, batch_first=True)

    def ffn():
        return dict(
            embed_dims=CHANNELS,
            feedforward_channels=64,
            num_fcs=2,
            ffn_drop=0.1,
            act_cfg=dict(type='ReLU', inplace=True))

    cfg = dict(
        type=head_type,
        in_channels=[8, 16, 32, 64],
        feat_channels=CHANNELS,
        out_channels=CHANNELS,
        num_things_classes=NUM_THINGS,
        num_stuff_classes=num_stuff,
        num_queries=NUM_QUERIES,
        pixel_decoder=dict(
            type='TransformerEncoderPixelDecoder',
            norm_cfg=dict(type='GN', num_groups=8),
            act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=attn(), ffn_cfg=ffn())),
            positional_encoding=dict(num_feats=CHANNELS // 2, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=CHANNELS // 2, normalize=True),
        transformer_decoder=dict(
            num_layers=NUM_LAYERS,
            layer_cfg=dict(self_attn_cfg=attn(), cross_attn_cfg=attn(), ffn_cfg=ffn()),
            return_intermediate=True),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            reduction='mean',
            class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            reduction='mean',
            loss_weight=20.0),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            reduction='mean',
            naive_dice=True,
            eps=1.0,
            loss_weight=1.0),
        train_cfg=dict(
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='ClassificationCost', weight=1.0),
                    dict(type='FocalLossCost', weight=20.0, binary_input=True),
                    dict(type='DiceCost', weight=1.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='MaskPseudoSampler')),
        test_cfg=dict(
            panoptic_on=True,
            semantic_on=False,
            instance_on=False,
            max_per_image=10,
            object_mask_thr=0.8,
            iou_thr=0.8,
            filter_low_score=False))
    if head_type == 'MaskFormerIBSHead' and loss_ibs != 'default':
        cfg['loss_ibs'] = loss_ibs
    cfg.update(extra)
    return ConfigDict(cfg)


def build_head(seed=0, **kwargs):
    torch.manual_seed(seed)
    head = MODELS.build(head_cfg(**kwargs))
    head.init_weights()
    return head


def naive_focal_to_zero(z):
    """Sigmoid focal loss (alpha 0.25, gamma 2) of logits z against target 0, from its
    definition: -(1 - alpha) * p^gamma * log(1 - p), p = sigmoid(z)."""
    p = torch.sigmoid(z)
    return -(1 - 0.25) * p**2 * torch.log(1 - p)


def assert_same_grads(head, ref_head):
    ref_params = dict(ref_head.named_parameters())
    for name, param in head.named_parameters():
        ref_grad = ref_params[name].grad
        assert (param.grad is None) == (ref_grad is None), name
        if ref_grad is not None:
            torch.testing.assert_close(param.grad, ref_grad, rtol=0, atol=0, msg=name)


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('num_stuff', [2, 0])
def test_ibs_off_is_mmdet_maskformer_bit_for_bit(num_stuff):
    """loss_ibs=None: the same loss dict (keys and values), gradients and predictions as mmdet's
    MaskFormerHead with the same weights and seed (dropout draws included)."""
    head = build_head(num_stuff=num_stuff, loss_ibs=None)
    ref_head = build_head(head_type='MaskFormerHead', num_stuff=num_stuff)
    assert head.loss_ibs is None
    ref_head.load_state_dict(head.state_dict(), strict=True)
    with_semantic = num_stuff > 0
    samples = [scene('cars', with_semantic), scene('people', with_semantic)]
    feats = make_features(2)
    torch.manual_seed(3)
    losses = head.loss(feats, samples)
    torch.manual_seed(3)
    ref_losses = ref_head.loss(feats, samples)
    assert set(losses) == set(ref_losses)
    for key, value in ref_losses.items():
        assert torch.equal(losses[key], value), key
    sum(losses.values()).backward()
    sum(ref_losses.values()).backward()
    assert_same_grads(head, ref_head)
    head.eval()
    ref_head.eval()
    with torch.no_grad():
        out, ref_out = head.predict(feats, samples), ref_head.predict(feats, samples)
    assert all(torch.equal(a, b) for a, b in zip(out, ref_out))


def test_zero_weight_keeps_mmdet_losses_grads_and_rng():
    """loss_weight=0 (IBS computed, weighted 0): mmdet's losses and every gradient unchanged,
    the IBS keys exact zeros in the graph; IBS draws its random partners after mmdet's losses."""
    loss_ibs = dict(type='IBSLoss', partner='random', num_points=None, loss_weight=0.0)
    head = build_head(loss_ibs=loss_ibs)
    ref_head = build_head(head_type='MaskFormerHead')
    ref_head.load_state_dict(head.state_dict(), strict=True)
    samples = [scene('cars'), scene('people')]
    feats = make_features(2)
    torch.manual_seed(3)
    losses = head.loss(feats, samples)
    torch.manual_seed(3)
    ref_losses = ref_head.loss(feats, samples)
    assert set(losses) == set(ref_losses) | IBS_KEYS
    for key, value in ref_losses.items():
        assert torch.equal(losses[key], value), key
    for key in IBS_KEYS:
        assert losses[key].item() == 0.0 and losses[key].grad_fn is not None
    sum(losses.values()).backward()
    sum(ref_losses.values()).backward()
    assert_same_grads(head, ref_head)
    assert head._ibs_record is None  # nothing is kept after loss()


def naive_ibs(layer_embeds, mask_features, assignments, partners, loss_weight):
    """The IBS loss of every layer, from its definition, per image with python loops.

    Args:
        layer_embeds (Tensor): Query mask embeddings of all layers, (L, B, Q, C).
        mask_features (Tensor): (B, C, H, W).
        assignments (list[tuple]): Per layer, mmdet's (labels_list, mask_weights_list).
        partners (list[list[int]]): Partner images of each image.
        loss_weight (float): The IBS weight.

    Returns:
        list[Tensor]: Per layer, the float64 loss and the number of IBS masks.
    """
    out = []
    for layer, (labels_list, weights_list) in enumerate(assignments):
        total, count = torch.zeros((), dtype=torch.float64), 0
        for b in range(mask_features.shape[0]):
            for q in range(NUM_QUERIES):
                if not (weights_list[b][q] > 0 and labels_list[b][q] < NUM_THINGS):
                    continue
                e = layer_embeds[layer, b, q].double()
                per_partner = []
                for p in partners[b]:
                    logits = sum(e[c] * mask_features[p, c].double() for c in range(CHANNELS))
                    per_partner.append(naive_focal_to_zero(logits).mean())  # all H/4 x W/4
                total = total + sum(per_partner) / len(per_partner)
                count += 1
        out.append((loss_weight * total / max(count, 1), count))
    return out


@pytest.mark.parametrize('partner,batch', [('pair', 2), ('all', 3)])
def test_ibs_equals_naive_per_image_reference_values_and_gradients(partner, batch):
    """Dense IBS on all 3 layers against ``naive_ibs`` on the embeddings and mask features of
    the same forward pass and mmdet's assignment of each layer: the loss values and the
    gradients of their sum with respect to every head parameter and the input features."""
    loss_ibs = dict(type='IBSLoss', partner=partner, num_points=None, loss_weight=3.0)
    head = build_head(loss_ibs=loss_ibs)
    samples = [scene('cars'), scene('people'), scene('cars')][:batch]
    feats = [f.requires_grad_(True) for f in make_features(batch)]

    assignments, embeds, mask_features = [], [], []
    original = MaskFormerHead.get_targets

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        assignments.append((out[0], out[3]))
        return out

    h1 = head.mask_embed.register_forward_hook(lambda m, a, out: embeds.append(out))
    h2 = head.pixel_decoder.register_forward_hook(lambda m, a, out: mask_features.append(out[0]))
    torch.manual_seed(0)
    with mock.patch.object(MaskFormerHead, 'get_targets', spy):
        losses = head.loss(feats, samples)
    h1.remove()
    h2.remove()
    # MaskFormer calls mask_embed once, on the stacked outputs of the decoder layers
    (layer_embeds, ) = embeds
    assert layer_embeds.shape == (NUM_LAYERS, batch, NUM_QUERIES, CHANNELS)
    assert len(assignments) == NUM_LAYERS
    assert mask_features[0].shape == (batch, CHANNELS, H // 4, W // 4)
    assert {k for k in losses if 'ibs' in k} == IBS_KEYS  # every layer, d0 included

    partners = [[1 - b] for b in range(batch)] if partner == 'pair' else [
        [p for p in range(batch) if p != b] for b in range(batch)
    ]
    reference = naive_ibs(layer_embeds, mask_features[0], assignments, partners, 3.0)
    num_thing_gts = sum(int((s.gt_instances.labels < NUM_THINGS).sum()) for s in samples)
    for layer, (value, count) in enumerate(reference):
        assert count == num_thing_gts  # Hungarian matching: one query per thing ground truth
        key = 'loss_ibs' if layer == NUM_LAYERS - 1 else f'd{layer}.loss_ibs'
        assert losses[key].dtype == torch.float32 and losses[key] > 0
        torch.testing.assert_close(losses[key].double(), value, rtol=1e-5, atol=1e-8)

    inputs = [p for p in head.parameters()] + feats
    ibs_sum = sum(losses[k] for k in IBS_KEYS)
    ref_sum = sum(value for value, _ in reference)
    grads = torch.autograd.grad(ibs_sum, inputs, retain_graph=True, allow_unused=True)
    ref_grads = torch.autograd.grad(ref_sum, inputs, allow_unused=True)
    names = [n for n, _ in head.named_parameters()] + [f'x[{i}]' for i in range(len(feats))]
    reached = set()
    for name, grad, ref_grad in zip(names, grads, ref_grads):
        assert (grad is None) == (ref_grad is None), name
        if grad is not None:
            # the float32 IBS path against the float64 reference path (the gradients of float32
            # leaves are float32 in both): the tolerance scales with the largest gradient
            scale = float(ref_grad.abs().max())
            torch.testing.assert_close(
                grad, ref_grad, rtol=1e-4, atol=1e-5 * scale + 1e-12, msg=name)
            if grad.abs().sum() > 0:
                reached.add(name.split('.')[0])
    # IBS trains the query path and the partner's mask features, never the class branch
    assert {'mask_embed', 'transformer_decoder', 'pixel_decoder', 'query_embed'} <= reached
    assert 'cls_embed' not in reached


def test_layer_switch_default_and_edge_cases():
    head = MODELS.build(head_cfg())  # the class default: dense, pair, weight 4, every layer
    ibs = head.loss_ibs
    assert (ibs.partner, ibs.num_points, ibs.loss_weight) == ('pair', None, 4.0)
    assert head.ibs_skip_first_layer is False
    skip = build_head(ibs_skip_first_layer=True)
    losses = skip.loss(make_features(2), [scene('cars'), scene('people')])
    assert {k for k in losses if 'ibs' in k} == IBS_KEYS - {'d0.loss_ibs'}
    # batch of one: no partner; stuff-only images: no thing query; both graph-connected zeros
    for feats, samples in ((make_features(1), [scene('cars')]),
                           (make_features(2), [scene('stuff_only'), scene('stuff_only')])):
        losses = head.loss(feats, samples)
        for key in IBS_KEYS:
            assert losses[key].item() == 0.0 and losses[key].grad_fn is not None
    with pytest.raises(ValueError, match='batch size 3'):  # 'pair' needs crop pairs
        head.loss(make_features(3), [scene('cars'), scene('people'), scene('cars')])
    with pytest.raises(RuntimeError, match='call loss'):
        head.loss_by_feat([], [], [], [])
    cfg = head_cfg(loss_ibss=dict(type='IBSLoss'))  # a typo must not train without IBS
    with pytest.raises(TypeError, match='loss_ibss'):
        MODELS.build(copy.deepcopy(cfg))


def test_half_precision_autocast():
    head = build_head(loss_ibs=dict(type='IBSLoss', partner='pair', loss_weight=20.0))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(make_features(2), [scene('cars'), scene('people')])
    for key in IBS_KEYS:
        assert losses[key].dtype == torch.float32 and torch.isfinite(losses[key])
        assert losses[key] > 0
    sum(losses.values()).backward()
