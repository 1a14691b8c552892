# Copyright (c) mmibs contributors. All rights reserved.
"""Panoptic FCN head: loss values against naive loops, gradients, IBS wiring, candidates."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

from mmibs.models.dense_heads.panoptic_fcn_head import (pool_region_kernels, topk_guided_kernels)
from mmibs.registry import MODELS
from mmibs.testing import tiny_panoptic_fcn_cfg, two_car_scenes

init_default_scope('mmdet')


def build_head(ibs=False, deform=False, **head_kwargs):
    cfg = tiny_panoptic_fcn_cfg(deform=deform, ibs=ibs)
    head = dict(cfg['panoptic_head'], train_cfg=cfg['train_cfg'], test_cfg=cfg['test_cfg'])
    head.update(head_kwargs)
    return MODELS.build(head)


def naive_focal(logit, target, alpha=0.25, gamma=2.0):
    p = 1 / (1 + math.exp(-logit))
    ce = -(target * math.log(p) + (1 - target) * math.log(1 - p))
    p_t = p * target + (1 - p) * (1 - target)
    return (alpha * target + (1 - alpha) * (1 - target)) * (1 - p_t)**gamma * ce


def naive_dice(prob, target):
    num = sum(p * t for p, t in zip(prob, target))
    den = sum(p * p for p in prob) + sum(t * t for t in target)
    return 1 - 2 * num / max(den, 1e-8)


def naive_topk_kernels(center, kmap, masks4, labels, k, thr=0.1):
    """Loops: guidance per position, positions sorted by guidance, the first k gathered."""
    hl, wl = kmap.shape[-2:]
    shrunk = F.interpolate(masks4[None], size=(hl, wl), mode='bilinear', align_corners=False)[0]
    kernels, weights = [], []
    for n, label in enumerate(labels.tolist()):
        guide = []
        for y in range(hl):
            for x in range(wl):
                g = torch.sigmoid(center[label, y, x]) if shrunk[n, y, x] > thr else 0.0
                guide.append((float(g), y, x))
        guide.sort(key=lambda t: -t[0])
        kernels.append(torch.stack([kmap[:, y, x] for _, y, x in guide[:k]]))
        weights.append(torch.tensor([g for g, _, _ in guide[:k]]))
    return torch.stack(kernels), torch.stack(weights)


def test_topk_guided_kernels_against_loops():
    g = torch.Generator().manual_seed(0)
    center = torch.randn(3, 5, 6, generator=g)
    kmap = torch.randn(4, 5, 6, generator=g)
    masks4 = torch.zeros(2, 10, 12)
    masks4[0, 1:6, 2:9] = 1
    masks4[1, 6:10, 0:4] = 0.6
    labels = torch.tensor([2, 0])
    kernels, weights = topk_guided_kernels(center, kmap, masks4, labels, 4, 0.1)
    exp_k, exp_w = naive_topk_kernels(center, kmap, masks4, labels, 4)
    torch.testing.assert_close(weights, exp_w)
    torch.testing.assert_close(kernels, exp_k)
    # K is capped by the level size
    kernels, weights = topk_guided_kernels(center[:, :1, :2], kmap[:, :1, :2], masks4, labels, 7,
                                           0.1)
    assert kernels.shape == (2, 2, 4)


def test_stuff_kernel_pooling_modes():
    kmap = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    regions = torch.zeros(1, 3, 4)
    regions[0, 1, 1:3] = 1  # two pixels: values (5, 6) and (17, 18)
    full = pool_region_kernels(regions, kmap, 'full_area')
    mean = pool_region_kernels(regions, kmap, 'masked_mean')
    # the release divides the region sum by the whole map area (12), docs/release_differences.md
    torch.testing.assert_close(full, torch.tensor([[11 / 12, 35 / 12]]))
    torch.testing.assert_close(mean, torch.tensor([[5.5, 17.5]]))


def random_head_outputs(head, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    c_e = head.head_module.embed_channels
    c_k = head.head_module.kernel_head.out_channels
    shapes = [(8, 16), (4, 8), (2, 4), (1, 2), (1, 1)]
    mask_feat = torch.randn(batch, c_e, 16, 32, generator=g)
    centers = [torch.randn(batch, 2, *s, generator=g) for s in shapes]
    regions = [torch.randn(batch, 4, *s, generator=g) for s in shapes]
    kernels = [torch.randn(batch, c_k, *s, generator=g) for s in shapes]
    return mask_feat, centers, regions, kernels, shapes


def test_loss_values_against_naive_loops():
    head = build_head()
    _, samples = two_car_scenes()
    mask_feat, centers, regions, kernels, shapes = random_head_outputs(head, 2)
    targets = [head.target_generator(s, (64, 128), (16, 32), shapes) for s in samples]
    losses = head.loss_by_feat(mask_feat, centers, regions, kernels, targets)
    assert set(losses) == {'loss_pos_th', 'loss_pos_st', 'loss_seg_th', 'loss_seg_st'}

    n_th = sum(len(lv['thing_labels']) for t in targets for lv in t)
    n_st = sum(len(lv['stuff_labels']) for t in targets for lv in t)
    assert n_th == 6  # 2 + (3 + 1) (instance, level) slots, see two_car_scenes
    pos_th = sum(
        naive_focal(float(c), float(t)) for lv, c_l in enumerate(centers)
        for c, t in zip(c_l.flatten(),
                        torch.stack([t[lv]['center_heatmap'] for t in targets]).flatten())) / n_th
    pos_st = 0.0
    for lv, r_l in enumerate(regions):
        for b in range(2):
            tgt = targets[b][lv]['region_scores']
            for c in range(4):
                vals = [
                    naive_focal(float(x), float(t))
                    for x, t in zip(r_l[b, c].flatten(), tgt[c].flatten())
                ]
                pos_st += sum(vals) / len(vals)
    pos_st /= 2
    embed_th = head.head_module.thing_embed
    embed_st = head.head_module.stuff_embed
    seg_th = seg_st = 0.0
    for b in range(2):
        feat = mask_feat[b].flatten(1)
        for lv in range(5):
            level = targets[b][lv]
            if len(level['thing_labels']):
                k, w = naive_topk_kernels(centers[lv][b], kernels[lv][b], level['thing_masks'],
                                          level['thing_labels'], 7)
                for n in range(len(k)):
                    wn = w[n] / w[n].sum()
                    for j in range(k.shape[1]):
                        e = embed_th.weight[:, :, 0, 0] @ k[n, j] + embed_th.bias
                        prob = torch.sigmoid(e @ feat).tolist()
                        seg_th += float(wn[j]) * naive_dice(prob, level['thing_masks'][n].flatten())
            for s, ch in enumerate(level['stuff_labels'].tolist()):
                region = level['stuff_region_masks'][s]
                pooled = (kernels[lv][b] * region).sum((1, 2)) / region.numel()
                e = embed_st.weight[:, :, 0, 0] @ pooled + embed_st.bias
                seg_st += naive_dice(
                    torch.sigmoid(e @ feat).tolist(), level['stuff_masks'][s].flatten())
    assert losses['loss_pos_th'].item() == pytest.approx(pos_th, rel=1e-4)
    assert losses['loss_pos_st'].item() == pytest.approx(pos_st, rel=1e-4)
    assert losses['loss_seg_th'].item() == pytest.approx(4.0 * seg_th / n_th, rel=1e-4)
    assert losses['loss_seg_st'].item() == pytest.approx(4.0 * seg_st / n_st, rel=1e-4)


def test_loss_step_gradients_reach_every_trainable_parameter():
    cfg = tiny_panoptic_fcn_cfg(deform=True)
    model = MODELS.build(cfg)
    imgs, samples = two_car_scenes()
    data = model.data_preprocessor(dict(inputs=list(imgs), data_samples=samples), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_pos_th', 'loss_pos_st', 'loss_seg_th', 'loss_seg_st'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert any('conv_offset' in n for n, _ in trainable)  # DCNv2 of the position head
    no_grad = [n for n, p in trainable if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    # frozen stages (stem, res2) and frozen BN get none
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any(n.startswith('backbone.conv1') for n in frozen)
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)


def test_no_things_gives_zero_thing_losses_in_graph():
    head = build_head()
    _, samples = two_car_scenes()
    for s in samples:
        s.gt_instances = s.gt_instances[:0]
    mask_feat, centers, regions, kernels, shapes = random_head_outputs(head, 2)
    targets = [head.target_generator(s, (64, 128), (16, 32), shapes) for s in samples]
    kernels = [k.requires_grad_() for k in kernels]
    losses = head.loss_by_feat(mask_feat, centers, regions, kernels, targets)
    assert losses['loss_seg_th'].item() == 0 and losses['loss_seg_th'].requires_grad
    assert losses['loss_seg_st'].item() > 0


def test_ibs_switch():
    head = build_head(ibs=False)
    _, samples = two_car_scenes()
    mask_feat, centers, regions, kernels, shapes = random_head_outputs(head, 2)
    targets = [head.target_generator(s, (64, 128), (16, 32), shapes) for s in samples]
    assert 'loss_ibs_th' not in head.loss_by_feat(mask_feat, centers, regions, kernels, targets)
    if MODELS.get('IBSLoss') is None:
        pytest.fail('IBSLoss (mmibs/models/losses/ibs_loss.py) is not registered yet')
    head = build_head(ibs=True)
    mask_feat, centers, regions, kernels, shapes = random_head_outputs(head, 2)
    losses = head.loss_by_feat(mask_feat, centers, regions, kernels, targets)
    assert losses['loss_ibs_th'].item() > 0
    # every thing kernel, normalised top-K weights, dense mean over the partner's F (docs/method.md)
    # (pair i ^ 1), divided by the (instance, level) slots, times SEGMENT x IBS weight
    embed = head.head_module.thing_embed
    total, n_th = 0.0, 0
    for b in range(2):
        partner = mask_feat[b ^ 1].flatten(1)
        for lv in range(5):
            level = targets[b][lv]
            if not len(level['thing_labels']):
                continue
            k, w = naive_topk_kernels(centers[lv][b], kernels[lv][b], level['thing_masks'],
                                      level['thing_labels'], 7)
            n_th += len(k)
            for n in range(len(k)):
                wn = w[n] / w[n].sum()
                for j in range(k.shape[1]):
                    logits = (embed.weight[:, :, 0, 0] @ k[n, j] + embed.bias) @ partner
                    fl = [naive_focal(float(z), 0.0) for z in logits]
                    total += float(wn[j]) * sum(fl) / len(fl)
    assert losses['loss_ibs_th'].item() == pytest.approx(4.0 * total / n_th, rel=1e-4)


def test_candidates_of_hand_made_maps():
    head = build_head()
    head.eval()
    c_e = head.head_module.embed_channels
    c_k = head.head_module.kernel_head.out_channels
    shapes = [(8, 16), (4, 8), (2, 4), (1, 2), (1, 1)]
    centers = [torch.full((1, 2, *s), -10.0) for s in shapes]
    centers[0][0, 1, 3, 5] = 2.0  # one peak of class 1 at level 0
    regions = [torch.full((1, 4, *s), -10.0) for s in shapes]
    regions[0][0, 2, :4] = 1.0  # class 2 on the top half of level 0 ...
    regions[0][0, 3, 4:] = 0.0  # ... class 3 at probability 0.5 on the bottom half
    kernels = [torch.randn(1, c_k, *s) for s in shapes]
    (cand, ) = head.predict_by_feat(torch.randn(1, c_e, 16, 32), centers, regions, kernels)
    # center score: (p + 3x3 average of p, zero padded) / 2 at the peak
    p, q = torch.sigmoid(torch.tensor(2.0)).item(), torch.sigmoid(torch.tensor(-10.0)).item()
    expected = (p + (p + 8 * q) / 9) / 2
    assert cand['thing_labels'].tolist() == [1]
    assert cand['thing_scores'][0].item() == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(cand['thing_embeds'][0],
                               head.head_module.thing_embed(kernels[0][0, :, 3:4, 5:6]).flatten())
    # stuff: class 2 and 3 regions at level 0 (scores sigmoid(1) and 0.5 > STUFF.THRES 0.1);
    # elsewhere argmax falls on channel 0 with probability ~0 and is dropped
    assert cand['stuff_channels'].tolist() == [2, 3]
    torch.testing.assert_close(cand['stuff_scores'],
                               torch.tensor([torch.sigmoid(torch.tensor(1.0)).item(), 0.5]))
    pooled = kernels[0][0, :, :4].sum((1, 2)) / (8 * 16)
    torch.testing.assert_close(cand['stuff_embeds'][0],
                               head.head_module.stuff_embed(pooled[None, :, None, None]).flatten())
