# Copyright (c) mmibs contributors. All rights reserved.
"""Benchmark-style: a tiny Panoptic FCN overfits two synthetic scenes (two same-class things
each) to PQ > 0.8 in 200 CPU iterations (about 20 s on one core)."""
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.registry import init_default_scope

from mmibs.registry import MODELS
from mmibs.testing import tiny_panoptic_fcn_cfg, two_car_scenes

init_default_scope('mmdet')
NUM_CLASSES = 4  # 2 things, 2 stuff; also the VOID id


def gt_panoptic(sample):
    """mmdet-encoded ground truth: stuff label, thing label + k * INSTANCE_OFFSET, void 4."""
    sem = sample.gt_sem_seg.sem_seg[0].long()
    pan = torch.where(sem == 255, torch.full_like(sem, NUM_CLASSES), sem)
    masks = sample.gt_instances.masks.to_tensor(torch.bool, 'cpu')
    for k, (mask, label) in enumerate(zip(masks, sample.gt_instances.labels.tolist())):
        pan[mask] = label + (k + 1) * INSTANCE_OFFSET
    return pan


def naive_pq(pairs):
    """COCO PQ over images, averaged over categories that occur: a (gt, pred) segment pair of one
    category matches when IoU > 0.5, the union leaving out the prediction's void pixels;
    predictions mostly (> 50 %) on void are not false positives."""
    stats = {}
    for gt, pred in pairs:
        gt_ids = [i for i in gt.unique().tolist() if i != NUM_CLASSES]
        pred_ids = [i for i in pred.unique().tolist() if i != NUM_CLASSES]
        matched = set()
        for g in gt_ids:
            cat = g % INSTANCE_OFFSET
            s = stats.setdefault(cat, [0.0, 0, 0, 0])  # iou sum, tp, fp, fn
            for p in pred_ids:
                if p % INSTANCE_OFFSET != cat or p in matched:
                    continue
                inter = int(((gt == g) & (pred == p)).sum())
                union = int(((gt == g) | (pred == p)).sum()) - int(
                    ((pred == p) & (gt == NUM_CLASSES)).sum())
                if inter / union > 0.5:
                    s[0] += inter / union
                    s[1] += 1
                    matched.add(p)
                    break
            else:
                s[3] += 1
        for p in pred_ids:
            on_void = int(((pred == p) & (gt == NUM_CLASSES)).sum()) / int((pred == p).sum())
            if p not in matched and on_void <= 0.5:
                stats.setdefault(p % INSTANCE_OFFSET, [0.0, 0, 0, 0])[2] += 1
    pqs = [iou / (tp + fp / 2 + fn / 2) for iou, tp, fp, fn in stats.values() if tp + fp + fn]
    return sum(pqs) / len(pqs)


def test_naive_pq_reference():
    gt = torch.tensor([[2, 2, 1000, 1000], [2, 2, 2000, 2000]])
    # one thing perfect, the other split in two halves: IoU 0.5 is not a match (1 FN + 2 FP)
    pred = torch.tensor([[2, 2, 1000, 1000], [2, 2, 2000, 3000]])
    assert naive_pq([(gt, gt)]) == 1.0
    assert naive_pq([(gt, pred)]) == pytest.approx((1.0 + 1 / (1 + 1.5)) / 2)


@pytest.mark.slow
def test_tiny_panoptic_fcn_overfits_two_scenes():
    torch.manual_seed(0)
    model = MODELS.build(tiny_panoptic_fcn_cfg(deform=False))
    imgs, samples = two_car_scenes()
    data = model.data_preprocessor(dict(inputs=list(imgs), data_samples=samples), training=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-3, weight_decay=0)
    model.train()
    for _ in range(200):
        losses = model.loss(data['inputs'], data['data_samples'])
        optim.zero_grad()
        sum(losses.values()).backward()
        optim.step()
    model.eval()
    with torch.no_grad():
        results = model.test_step(dict(inputs=list(imgs), data_samples=samples))
    pairs = [(gt_panoptic(s), r.pred_panoptic_seg.sem_seg[0].long())
             for s, r in zip(samples, results)]
    assert naive_pq(pairs) > 0.8
    for pair in pairs:
        assert naive_pq([pair]) > 0.8
