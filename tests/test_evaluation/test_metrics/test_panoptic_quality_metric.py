# Copyright (c) mmibs contributors. All rights reserved.
"""PanopticQualityMetric against the offline evaluation, the official evaluators and mmseg.

mmsegmentation is a test-only dependency: it is imported inside the tests that compare with it.
"""
import contextlib
import io
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as cs_eval
from mmdet.evaluation.functional import INSTANCE_OFFSET
from panopticapi import evaluation as pa_eval

from mmibs.evaluation import evaluate_panoptic
from mmibs.evaluation.functional import (PANOPTIC_KEYS, PanopticStats, read_panoptic_png,
                                         read_panoptic_runs, semantic_iou)
from mmibs.registry import METRICS
from projects.toy_cityscapes.synthetic import CITYSCAPES_CATEGORIES, write_panoptic_pairs

# mmdet's label order: things first (the json lists stuff first, so mapping by order would fail)
THINGS = [cat for cat in CITYSCAPES_CATEGORIES if cat['isthing']]
STUFF = [cat for cat in CITYSCAPES_CATEGORIES if not cat['isthing']]
CLASSES = [cat['name'] for cat in THINGS + STUFF]
META = dict(
    classes=tuple(CLASSES),
    thing_classes=tuple(c['name'] for c in THINGS),
    stuff_classes=tuple(c['name'] for c in STUFF))


def mmdet_samples(paths, with_gt=False, classes=CLASSES, first_inst=1):
    """Data samples as a model returns them: ``label + inst * INSTANCE_OFFSET``, VOID = 19."""
    label_of_cat = {cat['id']: classes.index(cat['name']) for cat in CITYSCAPES_CATEGORIES}
    thing_names = {cat['name'] for cat in THINGS}
    with open(paths['pred_json']) as f:
        preds = json.load(f)['annotations']
    with open(paths['gt_json']) as f:
        gts = {ann['image_id']: ann for ann in json.load(f)['annotations']}
    samples = []
    for ann in preds:
        ids = read_panoptic_png(osp.join(paths['pred_folder'], ann['file_name']))
        pan = np.full(ids.shape, len(CLASSES), dtype=np.int64)
        for inst, seg in enumerate(ann['segments_info'], start=first_inst):
            label = label_of_cat[seg['category_id']]
            is_thing = classes[label] in thing_names
            pan[ids == seg['id']] = label + is_thing * inst * INSTANCE_OFFSET
        sample = dict(
            img_id=ann['image_id'],
            img_path=f'{ann["image_id"]}_leftImg8bit.png',
            ori_shape=ids.shape,
            pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None]))
        if with_gt:  # the fields mmdet's CocoPanopticDataset gives (crowd things: is_thing False)
            gt = gts[ann['image_id']]
            sample['seg_map_path'] = osp.join(paths['gt_folder'], gt['file_name'])
            sample['segments_info'] = [
                dict(
                    id=s['id'],
                    category=label_of_cat[s['category_id']],
                    is_thing=classes[label_of_cat[s['category_id']]] in thing_names
                    and not s['iscrowd']) for s in gt['segments_info']
            ]
        samples.append(sample)
    return samples


def run_metric(samples, batch_size=2, meta=META, **kwargs):
    metric = METRICS.build(dict(type='PanopticQualityMetric', **kwargs))
    metric.dataset_meta = meta
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric.compute_metrics(metric.results)


@pytest.fixture
def pairs(tmp_path):
    return write_panoptic_pairs(
        str(tmp_path / 'data'), num_images=4, height=48, width=96, seed=5, num_things=12)


@pytest.mark.parametrize('matching', ['pq', 'max_overlap'])
def test_metric_equals_offline_evaluation(pairs, matching):
    samples = mmdet_samples(pairs)
    inputs = [sample['pred_panoptic_seg']['sem_seg'].clone() for sample in samples]
    results = run_metric(
        samples,
        ann_file=pairs['gt_json'],
        seg_prefix=pairs['gt_folder'],
        matching=matching,
        nproc=2)
    for sample, before in zip(samples, inputs):  # predictions are read, never written
        assert torch.equal(sample['pred_panoptic_seg']['sem_seg'], before)
    offline = evaluate_panoptic(**pairs, matching=matching, nproc=1, show_progress=False)
    assert set(results) == set(PANOPTIC_KEYS)
    for key in PANOPTIC_KEYS:
        assert results[key] == pytest.approx(offline[key], abs=1e-9), key
    assert 0 < results['PQ'] < 100 and 0 < results['Acc_th'] < 100


def test_large_instance_ids(pairs):
    # values above 2**22 (instance ids beyond 4000): ids stay exact
    samples = mmdet_samples(pairs, first_inst=5000)
    assert int(samples[0]['pred_panoptic_seg']['sem_seg'].max()) > 1 << 22
    results = run_metric(samples, ann_file=pairs['gt_json'], seg_prefix=pairs['gt_folder'])
    offline = evaluate_panoptic(**pairs, nproc=1, show_progress=False)
    for key in PANOPTIC_KEYS:
        assert results[key] == pytest.approx(offline[key], abs=1e-9), key


def test_stuff_class_with_label_0(pairs):
    """Classes in json order put a stuff class at label 0, so ``label + 0 * 1000 = 0``; mmdet's
    metric turns that segment into VOID (id 0), mmibs shifts ids by one."""
    json_order = [cat['name'] for cat in CITYSCAPES_CATEGORIES]
    meta = dict(META, classes=tuple(json_order))
    with open(pairs['pred_json']) as f:  # road (labelId 7) is label 0 here; it must be predicted
        assert any(seg['category_id'] == 7 for ann in json.load(f)['annotations']
                   for seg in ann['segments_info'])
    results = run_metric(
        mmdet_samples(pairs, classes=json_order),
        meta=meta,
        ann_file=pairs['gt_json'],
        seg_prefix=pairs['gt_folder'])
    offline = evaluate_panoptic(**pairs, nproc=1, show_progress=False)
    assert results['PQ'] == pytest.approx(offline['PQ'], abs=1e-9)
    assert results['mIoU'] == pytest.approx(offline['mIoU'], abs=1e-9)


def test_written_results_give_the_same_numbers_to_official_evaluators(pairs, tmp_path):
    prefix = str(tmp_path / 'out' / 'results')
    results = run_metric(
        mmdet_samples(pairs),
        ann_file=pairs['gt_json'],
        seg_prefix=pairs['gt_folder'],
        outfile_prefix=prefix)
    with open(f'{prefix}.panoptic.json') as f:
        written = json.load(f)['annotations']
    assert [ann['image_id'] for ann in written] == [f'city_{k:06d}_000019' for k in range(4)]
    json_ids = {cat['id'] for cat in CITYSCAPES_CATEGORIES}  # labelIds, not contiguous labels
    assert {seg['category_id'] for ann in written for seg in ann['segments_info']} <= json_ids
    with contextlib.redirect_stdout(io.StringIO()):
        cs_results = cs_eval.evaluatePanoptic(pairs['gt_json'], pairs['gt_folder'],
                                              f'{prefix}.panoptic.json', f'{prefix}.panoptic',
                                              str(tmp_path / 'cs.json'))
        pa_results = pa_eval.pq_compute(pairs['gt_json'], f'{prefix}.panoptic.json',
                                        pairs['gt_folder'], f'{prefix}.panoptic')
    for official in (cs_results, pa_results):
        for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
            for key in ('pq', 'sq', 'rq'):
                assert 100 * official[group][key] == pytest.approx(
                    results[key.upper() + suffix], abs=1e-9)


def test_format_only_needs_no_ground_truth(pairs, tmp_path):
    prefix = str(tmp_path / 'test_set')
    # only the categories of the json are used: no seg_prefix, no annotations needed
    with open(pairs['gt_json']) as f:
        categories_only = dict(categories=json.load(f)['categories'])
    cat_file = str(tmp_path / 'categories.json')
    with open(cat_file, 'w') as f:
        json.dump(categories_only, f)
    assert run_metric(
        mmdet_samples(pairs), ann_file=cat_file, format_only=True, outfile_prefix=prefix) == {}
    offline = evaluate_panoptic(
        pairs['gt_json'],
        pairs['gt_folder'],
        f'{prefix}.panoptic.json',
        f'{prefix}.panoptic',
        nproc=1,
        show_progress=False)
    reference = evaluate_panoptic(**pairs, nproc=1, show_progress=False)
    for key in PANOPTIC_KEYS:
        assert offline[key] == pytest.approx(reference[key], abs=1e-9), key


def test_ground_truth_from_data_samples(pairs):
    with_json = run_metric(
        mmdet_samples(pairs), ann_file=pairs['gt_json'], seg_prefix=pairs['gt_folder'])
    from_samples = run_metric(mmdet_samples(pairs, with_gt=True))
    for key in PANOPTIC_KEYS:
        assert from_samples[key] == pytest.approx(with_json[key], abs=1e-9), key


def test_miou_equals_mmseg_iou_metric(pairs):
    from mmseg.evaluation.metrics import IoUMetric

    samples = mmdet_samples(pairs, with_gt=True)
    results = run_metric(samples, ann_file=pairs['gt_json'], seg_prefix=pairs['gt_folder'])
    iou_metric = IoUMetric(ignore_index=255)
    iou_metric.dataset_meta = dict(classes=META['classes'])
    for sample in samples:
        gt_ids = read_panoptic_png(sample['seg_map_path'])
        gt_sem = np.full(gt_ids.shape, 255, dtype=np.int64)
        for seg in sample['segments_info']:
            gt_sem[gt_ids == seg['id']] = seg['category']
        pred_sem = sample['pred_panoptic_seg']['sem_seg'] % INSTANCE_OFFSET
        iou_metric.process({}, [
            dict(
                pred_sem_seg=dict(data=pred_sem),
                gt_sem_seg=dict(data=torch.from_numpy(gt_sem)[None]))
        ])
    with contextlib.redirect_stdout(io.StringIO()):
        reference = iou_metric.compute_metrics(iou_metric.results)
    assert round(results['mIoU'], 2) == pytest.approx(reference['mIoU'], abs=1e-9)


def _mmseg_miou_of_areas(metric, stats):
    """mIoU as PanopticQualityMetric computed it with mmseg's ``IoUMetric.total_area_to_metrics``
    on the summed semantic areas of the dataset classes."""
    from mmseg.evaluation.metrics import IoUMetric

    _, label2cat = metric._labels()
    column = {int(cat_id): k for k, cat_id in enumerate(stats.cat_ids)}
    index = np.array([column[int(cat_id)] for cat_id in label2cat])
    intersect, pred, label = (
        torch.from_numpy(getattr(stats, f)[index].astype(np.float64))
        for f in ('sem_intersect', 'sem_pred', 'sem_label'))
    metrics = IoUMetric.total_area_to_metrics(
        intersect, pred + label - intersect, pred, label, metrics=['mIoU'])
    return 100 * float(np.nanmean(metrics['IoU']))


@pytest.mark.parametrize('drop_class', [None, 'truck'])
def test_miou_is_mmseg_total_area_to_metrics_exactly(pairs, monkeypatch, drop_class):
    """The same float as mmseg on the same areas, also with a json category that is no dataset
    class (it must not count); computed without mmsegmentation importable."""
    classes = [c for c in CLASSES if c != drop_class]
    meta = dict(META, classes=tuple(classes))
    samples = mmdet_samples(pairs, classes=CLASSES)
    if drop_class is not None:  # the dropped class's pixels become VOID (label len(classes))
        dropped = CLASSES.index(drop_class)
        for sample in samples:
            pan = sample['pred_panoptic_seg']['sem_seg'].clone()
            labels, inst = pan % INSTANCE_OFFSET, pan // INSTANCE_OFFSET
            labels = torch.where(labels == dropped, len(CLASSES), labels)
            labels = labels - (labels > dropped).long()
            pan = torch.where(labels == len(classes), torch.full_like(pan, len(classes)),
                              labels + inst * INSTANCE_OFFSET)
            sample['pred_panoptic_seg'] = dict(sem_seg=pan)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, 'mmseg', None)  # `import mmseg` raises ImportError
        with pytest.raises(ImportError):
            import mmseg  # noqa: F401
        metric = METRICS.build(
            dict(
                type='PanopticQualityMetric',
                ann_file=pairs['gt_json'],
                seg_prefix=pairs['gt_folder']))
        metric.dataset_meta = meta
        metric.process({}, samples)
        results = metric.compute_metrics(metric.results)
    categories, _ = metric._labels()
    total = PanopticStats(categories)
    for result in metric.results:
        total += result['stats']
    assert (total.sem_intersect > 0).sum() > 5
    assert results['mIoU'] == _mmseg_miou_of_areas(metric, total)
    assert 0 < results['mIoU'] < 100
    if drop_class is not None:  # the mean over every json category would differ
        assert results['mIoU'] != 100 * np.nanmean(semantic_iou(total))


def test_miou_leaves_out_classes_that_never_occur_as_mmseg():
    """A class with an empty union has NaN IoU in mmseg and is left out of the mean."""
    metric = METRICS.build(dict(type='PanopticQualityMetric'))
    metric.dataset_meta = dict(classes=('car', 'bus', 'road', 'sky'), thing_classes=('car', 'bus'))
    stats = PanopticStats(metric._labels()[0])
    stats.sem_intersect[:] = [3, 0, 10, 0]
    stats.sem_pred[:] = [4, 0, 17, 2]
    stats.sem_label[:] = [7, 0, 11, 0]  # bus never occurs, sky only as a false prediction
    assert metric._miou(stats) == _mmseg_miou_of_areas(metric, stats)
    assert metric._miou(stats) == pytest.approx(100 * (3 / 8 + 10 / 18 + 0) / 3)


def test_without_miou(pairs):
    results = run_metric(
        mmdet_samples(pairs),
        ann_file=pairs['gt_json'],
        seg_prefix=pairs['gt_folder'],
        with_miou=False,
        classwise=True)
    assert 'mIoU' not in results and 'PQ' in results


def test_bad_inputs_are_named(pairs):
    with pytest.raises(ValueError, match='outfile_prefix'):
        METRICS.build(dict(type='PanopticQualityMetric', format_only=True))
    with pytest.raises(ValueError, match='matching'):
        METRICS.build(dict(type='PanopticQualityMetric', matching='iou'))
    samples = mmdet_samples(pairs)
    metric = METRICS.build(
        dict(
            type='PanopticQualityMetric', ann_file=pairs['gt_json'], seg_prefix=pairs['gt_folder']))
    metric.dataset_meta = dict(META, classes=META['classes'] + ('unicorn', ))
    with pytest.raises(ValueError, match="'unicorn'"):
        metric.process({}, samples[:1])
    metric.dataset_meta = META
    with pytest.raises(KeyError, match='nowhere'):
        metric.process({}, [dict(samples[0], img_id='nowhere')])
    small = dict(
        samples[0],
        pred_panoptic_seg=dict(sem_seg=samples[0]['pred_panoptic_seg']['sem_seg'][:, :10]))
    with pytest.raises(ValueError, match='original image size'):
        metric.process({}, [small])
    metric = METRICS.build(dict(type='PanopticQualityMetric'))
    metric.dataset_meta = META
    with pytest.raises(KeyError, match='seg_map_path'):
        metric.process({}, samples[:1])


@pytest.mark.parametrize('with_json', [True, False])
def test_ground_truth_is_decoded_once_per_run(pairs, monkeypatch, with_json):
    """Repeated validation reads each ground-truth PNG once; the numbers do not change."""
    from mmibs.evaluation.metrics import panoptic_quality_metric as module
    decoded = []

    def counting_read(path, *args, **kwargs):
        decoded.append(path)
        return read_panoptic_runs(path, *args, **kwargs)

    monkeypatch.setattr(module, 'read_panoptic_runs', counting_read)
    samples = mmdet_samples(pairs, with_gt=not with_json)
    kwargs = dict(ann_file=pairs['gt_json'], seg_prefix=pairs['gt_folder']) if with_json else {}

    def evaluate_twice(**cache):
        decoded.clear()
        metric = METRICS.build(dict(type='PanopticQualityMetric', nproc=2, **kwargs, **cache))
        metric.dataset_meta = META
        runs = []
        for _ in range(2):  # two validation rounds of the same run
            for start in range(0, len(samples), 2):
                metric.process({}, samples[start:start + 2])
            assert all(set(r) == {'stats'} for r in metric.results)  # nothing big is gathered
            runs.append((metric.evaluate(len(samples)), len(decoded)))
        return runs

    (first, after_first), (second, after_second) = evaluate_twice()
    assert after_first == len(samples) and after_second == len(samples)
    assert second == first and first['panoptic/PQ'] > 0
    reference = evaluate_panoptic(**pairs, nproc=1, show_progress=False)
    for key in PANOPTIC_KEYS:
        assert first[f'panoptic/{key}'] == pytest.approx(reference[key], abs=1e-9), key

    # no cache: decoded at every evaluation
    (no_cache, _), (_, decodes) = evaluate_twice(gt_cache_bytes=0)
    assert decodes == 2 * len(samples) and no_cache == first
    # a budget for the first image: that one is kept, the others are decoded again
    with open(pairs['gt_json']) as f:
        files = {ann['image_id']: ann['file_name'] for ann in json.load(f)['annotations']}
    first_png = osp.join(pairs['gt_folder'], files[samples[0]['img_id']])
    one = read_panoptic_runs(first_png).nbytes
    (_, _), (small, decodes) = evaluate_twice(gt_cache_bytes=one)
    assert decodes == 2 * len(samples) - 1 and small == first
