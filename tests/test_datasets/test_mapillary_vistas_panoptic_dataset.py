# Copyright (c) mmibs contributors. All rights reserved.
"""Mapillary Vistas datasets on converted synthetic data; version checks; instance variant."""
import json

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmibs.datasets import MapillaryVistasInstanceDataset, MapillaryVistasPanopticDataset
from mmibs.datasets.mapillary_vistas_panoptic import VISTAS_V12_CATEGORIES
from projects.toy_cityscapes.synthetic import make_converted_vistas


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_converted_vistas(
        str(tmp_path_factory.mktemp('vistas')),
        num_train=2,
        num_val=1,
        height=96,
        width=160,
        seed=4,
        instances=True)


def test_v12_metainfo():
    meta = MapillaryVistasPanopticDataset.METAINFO
    assert len(meta['classes']) == 65
    assert len(meta['thing_classes']) == 37 and len(meta['stuff_classes']) == 28
    assert meta['classes'] == meta['thing_classes'] + meta['stuff_classes']
    by_name = {c['name']: c for c in VISTAS_V12_CATEGORIES}
    assert all(by_name[n]['isthing'] for n in meta['thing_classes'])
    assert not any(by_name[n]['isthing'] for n in meta['stuff_classes'])
    assert [tuple(by_name[n]['color'])
            for n in meta['classes']] == [tuple(p) for p in meta['palette']]
    # Things keep the json's id order (Bird first, Wheeled Slow last).
    assert meta['thing_classes'][0] == 'Bird' and meta['thing_classes'][-1] == 'Wheeled Slow'
    assert MapillaryVistasInstanceDataset.METAINFO['classes'] == meta['thing_classes']


def _dataset(data, split='train', ann_file=None, **kwargs):
    return MapillaryVistasPanopticDataset(
        data_root=data['data_root'],
        ann_file=ann_file or data[f'{split}_ann_file'],
        data_prefix=data[f'{split}_data_prefix'],
        **kwargs)


def test_labels_by_name(data):
    dataset = _dataset(data)
    classes = dataset.metainfo['classes']
    name_of = {c['id']: c['name'] for c in VISTAS_V12_CATEGORIES}
    for i, record in enumerate(data['manifest']['splits']['training']):
        info = dataset.get_data_info(i)
        got = sorted((s['id'], classes[s['category']], s['is_thing'], s['iscrowd'])
                     for s in info['segments_info'])
        expected = sorted(
            (s['id'], name_of[s['category_id']], s['isthing'] and not s['iscrowd'], s['iscrowd'])
            for s in record['segments'])
        assert got == expected
        assert info['seg_map_path'].endswith(record['image_id'] + '.png')


def test_version_mismatch_and_v20(data, tmp_path):
    good = json.load(open(data['train_ann_path']))
    extra = [
        dict(id=100 + k, name=f'Extra {k}', isthing=k % 2, color=[k, k, k]) for k in range(59)
    ]  # 65 + 59 = 124 categories, the size of a v2.0 json
    path = str(tmp_path / 'v20.json')
    json.dump(dict(good, categories=good['categories'] + extra), open(path, 'w'))
    with pytest.raises(
            ValueError,
            match=r"v20\.json: 124 categories, but Mapillary Vistas v1\.2 "
            r".*pass version='v2\.0'"):
        _dataset(data, ann_file=path)
    v20 = _dataset(data, ann_file=path, version='v2.0')
    meta = v20.metainfo
    assert len(meta['classes']) == 124 and len(meta['thing_classes']) == 37 + 29
    assert meta['classes'] == meta['thing_classes'] + meta['stuff_classes']
    assert meta['thing_classes'][-1] == 'Extra 57'
    with pytest.raises(ValueError, match=r"65 categories, but Mapillary Vistas v2\.0"):
        _dataset(data, version='v2.0')
    with pytest.raises(ValueError, match='version must be one of'):
        _dataset(data, version='v3')


def test_instance_dataset_and_coco_metric(data):
    """The RLE instance json loads with labels by name and scores segm mAP 1 against itself."""
    from mmdet.evaluation import CocoMetric
    from pycocotools import mask as mask_utils
    dataset = MapillaryVistasInstanceDataset(
        data_root=data['data_root'],
        ann_file=data['val_instance_file'],
        data_prefix=dict(img='validation/images/'),
        test_mode=True)
    classes = dataset.metainfo['classes']
    name_of = {c['id']: c['name'] for c in VISTAS_V12_CATEGORIES}
    record = data['manifest']['splits']['validation'][0]
    info = dataset.get_data_info(0)
    expected = sorted(
        (name_of[s['category_id']], s['iscrowd']) for s in record['segments'] if s['isthing'])
    assert sorted((classes[x['bbox_label']], x['ignore_flag']) for x in info['instances']) == \
        expected
    metric = CocoMetric(ann_file=data['data_root'] + data['val_instance_file'], metric='segm')
    metric.dataset_meta = dataset.metainfo
    kept = [x for x in info['instances'] if not x['ignore_flag']]
    masks = np.stack([mask_utils.decode(x['mask']) for x in kept])
    pred = InstanceData(
        bboxes=torch.tensor([x['bbox'] for x in kept], dtype=torch.float32),
        scores=torch.ones(len(kept)),
        labels=torch.tensor([x['bbox_label'] for x in kept]),
        masks=torch.from_numpy(masks).bool())
    metric.process({}, [dict(img_id=info['img_id'], ori_shape=(96, 160), pred_instances=pred)])
    results = metric.compute_metrics(metric.results)
    assert results['segm_mAP'] == pytest.approx(1.0)
