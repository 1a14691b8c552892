# Copyright (c) mmibs contributors. All rights reserved.
"""CondInstIBSMaskHead: without IBS it is mmdet's CondInstMaskHead bit for bit; with IBS mmdet's
mask loss (and its random selection of positives) is untouched and ``loss_ibs`` equals a naive
loop that runs each positive's dynamic mask head by hand on the partner's mask features with the
positive's own relative coordinates (``docs/method.md``, IBS in CondInst)."""
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import CondInstMaskHead
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmibs  # noqa: F401  (registers CondInstIBSMaskHead and IBSLoss)
from mmibs.registry import MODELS
from mmibs.testing import unscaled_sample

H, W = 64, 96  # input size
IN_CHANNELS = 16
MASK_CHANNELS = 8  # C: mask-feature channels (mmdet's dynamic head needs C == feat_channels)
MASK_FEAT_STRIDE, MASK_OUT_STRIDE = 8, 4
SIZE_OF_INTEREST = 8
NUM_PARAMS = (MASK_CHANNELS + 2) * 8 + 8 + 8 * 8 + 8 + 8 + 1  # 169
NUM_CLASSES = 3


def head_cfg(head_type='CondInstIBSMaskHead', loss_ibs='default', **extra):
    """A tiny CondInst mask head: mask features from 3 levels at stride 8, 3 dynamic layers."""
    cfg = dict(
        type=head_type,
        num_layers=3,
        feat_channels=8,
        size_of_interest=SIZE_OF_INTEREST,
        mask_out_stride=MASK_OUT_STRIDE,
        max_masks_to_train=-1,
        mask_feature_head=dict(
            in_channels=IN_CHANNELS,
            feat_channels=16,
            start_level=0,
            end_level=2,
            out_channels=MASK_CHANNELS,
            mask_stride=MASK_FEAT_STRIDE,
            num_stacked_convs=2,
            norm_cfg=dict(type='BN', requires_grad=True)),
        loss_mask=dict(
            type='DiceLoss', use_sigmoid=True, activate=True, eps=5e-6, loss_weight=1.0),
        test_cfg=dict(mask_thr=0.5))
    if head_type == 'CondInstIBSMaskHead':
        cfg['loss_ibs'] = (
            dict(type='IBSLoss', partner='pair', num_points=None, loss_weight=1.0)
            if loss_ibs == 'default' else loss_ibs)
    cfg.update(extra)
    return ConfigDict(cfg)


def build_head(seed=0, **kwargs):
    torch.manual_seed(seed)
    head = MODELS.build(head_cfg(**kwargs))
    head.init_weights()
    return head


SCENES = {
    'cars': [(0, (4, 20, 40, 60)), (0, (44, 18, 90, 62)), (2, (60, 2, 80, 16))],
    'people': [(1, (10, 10, 30, 50)), (0, (50, 30, 94, 63))],
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


def make_positive_infos(samples, per_gt=3, seed=2):
    """What CondInstBboxHead.get_positive_infos gives: ``per_gt`` positives per ground truth at
    points inside its box, on strides 8 / 16 / 32, with dynamic parameters that need gradients."""
    gen = torch.Generator().manual_seed(seed)
    infos = []
    for sample in samples:
        boxes = sample.gt_instances.bboxes
        num = len(boxes) * per_gt
        gt_inds = torch.arange(len(boxes)).repeat_interleave(per_gt)
        frac = torch.rand(num, 2, generator=gen)
        points = boxes[gt_inds, :2] + frac * (boxes[gt_inds, 2:] - boxes[gt_inds, :2])
        strides = torch.tensor([8.0, 16.0, 32.0])[torch.randint(0, 3, (num, ), generator=gen)]
        infos.append(
            InstanceData(
                points=points,
                strides=strides,
                scores=torch.randn(num, NUM_CLASSES, generator=gen),
                centernesses=torch.randn(num, 1, generator=gen),
                param_preds=(0.5 * torch.randn(num, NUM_PARAMS, generator=gen)).requires_grad_(),
                pos_assigned_gt_inds=gt_inds,
                pos_inds=torch.arange(num)))
    return infos


def detections(samples):
    """Box-head results of the first image for predict(): its positives as detections."""
    info = make_positive_infos(samples[:1])[0]
    return [
        InstanceData(
            points=info.points,
            strides=info.strides,
            param_preds=info.param_preds.detach(),
            bboxes=torch.tensor([[0.0, 0.0, 10.0, 10.0]]).repeat(len(info), 1),
            labels=info.pos_assigned_gt_inds,
            scores=info.scores.sigmoid().max(dim=1)[0])
    ]


def make_features(batch_size, seed=1):
    """FPN-like inputs at strides 8, 16, 32, each (B, IN_CHANNELS, H / s, W / s)."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch_size, IN_CHANNELS, H // s, W // s, generator=gen) for s in (8, 16, 32))


def naive_focal_to_zero(z):
    p = torch.sigmoid(z)
    return -(1 - 0.25) * p**2 * torch.log(1 - p)


def naive_aligned_bilinear(x, factor):
    """AdelaiDet's aligned upsampling of a (h, w) map: replicate-pad right and bottom by 1,
    align-corners bilinear to factor * size + 1, shift by factor // 2, crop."""
    h, w = x.shape
    x = F.pad(x[None, None], (0, 1, 0, 1), mode='replicate')
    x = F.interpolate(x, size=(factor * h + 1, factor * w + 1), mode='bilinear',
                      align_corners=True)
    x = F.pad(x, (factor // 2, 0, factor // 2, 0), mode='replicate')
    return x[0, 0, :factor * h, :factor * w]


def naive_dynamic_mask(params, point, stride, feats):
    """One positive's mask logits on (C, h, w) features, by hand: the relative coordinates of
    its point, three 1x1 layers (ReLU between) with its parameters, x2 aligned upsampling."""
    c, h, w = feats.shape
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * MASK_FEAT_STRIDE
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * MASK_FEAT_STRIDE
    scale = stride * SIZE_OF_INTEREST
    rel_x = ((point[0] - xs) / scale)[None, :].expand(h, w)
    rel_y = ((point[1] - ys) / scale)[:, None].expand(h, w)
    x = torch.cat([rel_x[None], rel_y[None], feats])  # (2 + C, h, w)
    # parameters: weights of the 3 layers, then their biases
    sizes = [8 * (c + 2), 8 * 8, 8, 8, 8, 1]
    w0, w1, w2, b0, b1, b2 = torch.split(params, sizes)
    x = torch.relu(torch.einsum('oc,chw->ohw', w0.reshape(8, c + 2), x) + b0[:, None, None])
    x = torch.relu(torch.einsum('oc,chw->ohw', w1.reshape(8, 8), x) + b1[:, None, None])
    z = torch.einsum('c,chw->hw', w2, x) + b2
    return naive_aligned_bilinear(z, MASK_FEAT_STRIDE // MASK_OUT_STRIDE)


class Recorder:
    """Spies on mmdet's ``_get_targets_single`` (what the real call keeps) and on the head's
    mask features."""

    def __init__(self, head):
        self.kept, self.mask_feats = [], []
        self.original = CondInstMaskHead._get_targets_single
        head.mask_feature_head.register_forward_hook(
            lambda m, a, out: self.mask_feats.append(out))

    def spy(self):
        """A replacement of mmdet's method that records the masks each real call keeps."""

        def targets_single(head, mask_preds, gt_instances, positive_info):
            out = self.original(head, mask_preds, gt_instances, positive_info)
            if mask_preds.dim() == 3:  # the real call (the IBS dry run passes indices)
                self.kept.append(out[0])
            return out

        return targets_single


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('selection', [dict(max_masks_to_train=4), dict(topk_masks_per_img=5)])
def test_without_ibs_it_is_mmdet_bit_for_bit(selection):
    """loss_ibs=None: same parameters, loss, gradients (parameters, dynamic parameters, inputs)
    and predictions as mmdet's CondInstMaskHead; the random selection included."""
    head = build_head(loss_ibs=None, **selection)
    ref_head = build_head(head_type='CondInstMaskHead', **selection)
    assert type(ref_head) is CondInstMaskHead and head.loss_ibs is None
    for (name, p), (ref_name, ref_p) in zip(head.state_dict().items(),
                                            ref_head.state_dict().items()):
        assert name == ref_name and torch.equal(p, ref_p), name
    samples = [make_sample('cars'), make_sample('people')]
    infos, ref_infos = make_positive_infos(samples), make_positive_infos(samples)
    feats = [f.requires_grad_() for f in make_features(2)]
    ref_feats = [f.detach().clone().requires_grad_() for f in feats]

    torch.manual_seed(3)
    losses = head.loss(feats, samples, positive_infos=infos)
    torch.manual_seed(3)
    ref_losses = ref_head.loss(ref_feats, samples, positive_infos=ref_infos)
    assert set(losses) == set(ref_losses) == {'loss_mask'}
    assert torch.equal(losses['loss_mask'], ref_losses['loss_mask'])
    losses['loss_mask'].backward()
    ref_losses['loss_mask'].backward()
    ref_params = dict(ref_head.named_parameters())
    for name, param in head.named_parameters():
        assert torch.equal(param.grad, ref_params[name].grad), name
    for info, ref_info in zip(infos, ref_infos):
        assert torch.equal(info.param_preds.grad, ref_info.param_preds.grad)
    for f, ref_f in zip(feats, ref_feats):
        assert torch.equal(f.grad, ref_f.grad)

    head.eval()
    ref_head.eval()
    with torch.no_grad():
        (out, ) = head.predict(make_features(1), samples[:1], results_list=detections(samples))
        (ref_out, ) = ref_head.predict(
            make_features(1), samples[:1], results_list=detections(samples))
    assert out.masks.shape == (9, H, W) and torch.equal(out.masks, ref_out.masks)


@pytest.mark.parametrize('selection', [dict(max_masks_to_train=4), dict(topk_masks_per_img=5)])
def test_ibs_uses_the_positives_of_the_mask_loss_and_keeps_its_draw(selection):
    """With a selection (random: max_masks_to_train; scored: topk_masks_per_img), IBS takes the
    positives the mask loss keeps, and loss_mask is still mmdet's bit for bit."""
    head = build_head(**selection)
    ref_head = build_head(head_type='CondInstMaskHead', **selection)
    samples = [make_sample('cars'), make_sample('people')]
    infos = make_positive_infos(samples)
    recorder = Recorder(head)
    selections = []
    original_ibs = type(head)._ibs_loss

    def spy_ibs(self, mask_feats, positive_infos, selected):
        selections.extend(selected)
        return original_ibs(self, mask_feats, positive_infos, selected)

    torch.manual_seed(3)
    with mock.patch.object(CondInstMaskHead, '_get_targets_single', recorder.spy()), \
            mock.patch.object(type(head), '_ibs_loss', spy_ibs):
        losses = head.loss(make_features(2), samples, positive_infos=infos)
    torch.manual_seed(3)
    ref_infos = make_positive_infos(samples)
    ref_losses = ref_head.loss(make_features(2), samples, positive_infos=ref_infos)
    assert torch.equal(losses['loss_mask'], ref_losses['loss_mask'])
    assert losses['loss_ibs'] > 0
    # the rows the mask loss kept are the forward rows at the indices IBS uses
    (mask_preds, ) = head.forward(make_features(2), infos)
    assert len(selections) == len(recorder.kept) == 2
    for img_id, (sel, kept) in enumerate(zip(selections, recorder.kept)):
        assert 0 < len(sel) < len(infos[img_id])
        torch.testing.assert_close(kept, mask_preds[img_id][sel], rtol=0, atol=0)


@pytest.mark.parametrize('partner', ['pair', 'all'])
def test_ibs_equals_naive_dynamic_heads_on_partner_features(partner):
    """loss_ibs and its gradients (dynamic parameters, mask-feature branch) against a per-image
    loop: each positive's dynamic head by hand on the partner's mask features with the positive's
    relative coordinates, focal loss to zero, normalised by the number of positives."""
    weight = 1.5
    head = build_head(loss_ibs=dict(type='IBSLoss', partner=partner, loss_weight=weight))
    batch = 4 if partner == 'all' else 2
    samples = [make_sample(k) for k in ('cars', 'people', 'cars', 'empty')[:batch]]
    infos = make_positive_infos(samples)
    recorder = Recorder(head)
    losses = head.loss(make_features(batch), samples, positive_infos=infos)
    (mask_feats, ) = recorder.mask_feats

    reference, count = 0.0, 0
    for i, info in enumerate(infos):
        partners = [i ^ 1] if partner == 'pair' else [j for j in range(batch) if j != i]
        for n in range(len(info)):
            per_partner = [
                naive_focal_to_zero(
                    naive_dynamic_mask(info.param_preds[n], info.points[n], info.strides[n],
                                       mask_feats[j])).mean() for j in partners
            ]
            reference = reference + sum(per_partner) / len(per_partner)
            count += 1
    assert count == sum(len(info) for info in infos) >= 15
    reference = weight * reference / count
    torch.testing.assert_close(losses['loss_ibs'], reference, rtol=1e-5, atol=1e-7)

    inputs = [info.param_preds for info in infos[:-1]] + list(head.mask_feature_head.parameters())
    grads = torch.autograd.grad(losses['loss_ibs'], inputs, retain_graph=True)
    ref_grads = torch.autograd.grad(reference, inputs)
    for grad, ref_grad in zip(grads, ref_grads):
        # float32 sums over every pixel and positive: absolute error relative to the largest entry
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5 * ref_grad.abs().max())
    assert ref_grads[0].abs().sum() > 0 and ref_grads[-1].abs().sum() > 0


def test_relative_coordinates_are_those_of_the_own_image():
    """Moving a positive's point changes its IBS term: the partner's mask is computed around
    the positive's own location, not around anything of the partner image."""
    head = build_head()
    samples = [make_sample('cars'), make_sample('people')]
    infos = make_positive_infos(samples)
    feats = make_features(2)
    base = head.loss(feats, samples, positive_infos=infos)['loss_ibs']
    infos[0].points = infos[0].points + torch.tensor([16.0, 8.0])
    moved = head.loss(feats, samples, positive_infos=infos)['loss_ibs']
    assert not torch.equal(base, moved)


def test_edge_cases_and_refusals():
    head = build_head()
    # batch of one: no partner
    samples = [make_sample('cars')]
    losses = head.loss(make_features(1), samples, positive_infos=make_positive_infos(samples))
    assert losses['loss_ibs'].item() == 0.0 and losses['loss_ibs'].grad_fn is not None
    # no ground truth, no positives
    samples = [make_sample('empty'), make_sample('empty')]
    losses = head.loss(make_features(2), samples, positive_infos=make_positive_infos(samples))
    assert losses['loss_ibs'].item() == 0.0 and losses['loss_ibs'].grad_fn is not None
    sum(losses.values()).backward()
    # positives in one image only: its dynamic heads meet the empty image's features
    samples = [make_sample('cars'), make_sample('empty')]
    losses = head.loss(make_features(2), samples, positive_infos=make_positive_infos(samples))
    assert losses['loss_ibs'] > 0
    with pytest.raises(ValueError, match='batch size 3'):
        samples = [make_sample('cars')] * 3
        head.loss(make_features(3), samples, positive_infos=make_positive_infos(samples))
    with pytest.raises(RuntimeError, match='call loss'):
        head.loss_by_feat([], [], [], [])
    with pytest.raises(ValueError, match='num_points'):
        MODELS.build(head_cfg(loss_ibs=dict(type='IBSLoss', num_points=100)))
