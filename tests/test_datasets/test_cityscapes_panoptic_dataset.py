# Copyright (c) mmibs contributors. All rights reserved.
"""CityscapesPanopticDataset on converted synthetic data, checked against the raw gtFine files."""
import json
import os.path as osp
import random

import numpy as np
import pytest
from mmcv.transforms import Compose
from PIL import Image

from mmibs.datasets import CityscapesPanopticDataset
from mmibs.datasets.cityscapes_panoptic import CITYSCAPES_LABEL_IDS
from mmibs.registry import TRANSFORMS
from projects.toy_cityscapes.synthetic import make_converted_cityscapes


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_converted_cityscapes(
        str(tmp_path_factory.mktemp('cs')), num_train=2, num_val=1, height=96, width=192, seed=11)


def _dataset(data, split='train', ann_file=None, **kwargs):
    return CityscapesPanopticDataset(
        data_root=data['data_root'],
        ann_file=ann_file or data[f'{split}_ann_file'],
        data_prefix=data[f'{split}_data_prefix'],
        **kwargs)


def test_metainfo_matches_cityscapesscripts():
    from cityscapesscripts.helpers.labels import labels
    evaluated = [lb for lb in labels if not lb.ignoreInEval]
    things = [lb for lb in evaluated if lb.hasInstances]
    stuff = [lb for lb in evaluated if not lb.hasInstances]
    meta = CityscapesPanopticDataset.METAINFO
    assert meta['thing_classes'] == tuple(lb.name for lb in things)
    assert meta['stuff_classes'] == tuple(lb.name for lb in stuff)
    assert meta['classes'] == meta['thing_classes'] + meta['stuff_classes']
    assert [tuple(c) for c in meta['palette']] == [lb.color for lb in things + stuff]
    assert CITYSCAPES_LABEL_IDS == tuple(lb.id for lb in things + stuff)
    assert len(meta['thing_classes']) == 8 and len(meta['stuff_classes']) == 11


def _expected_segments(record):
    """Label, thing flag and xyxy box per manifest segment, computed from labelIds alone."""
    label_of = {cat_id: i for i, cat_id in enumerate(CITYSCAPES_LABEL_IDS)}
    out = {}
    for s in record['segments']:
        x, y, w, h = s['bbox']
        label = label_of[s['category_id']]
        out[s['id']] = (label, label < 8 and not s['iscrowd'], [x, y, x + w, y + h])
    return out


def test_data_infos_follow_class_names(data, tmp_path):
    dataset = _dataset(data)
    assert len(dataset) == 2
    # The same json with categories shuffled (e.g. cityscapesscripts' stuff-first order) must
    # give the same labels: labels come from class names, never from json order.
    shuffled = json.load(open(data['train_ann_path']))
    random.Random(0).shuffle(shuffled['categories'])
    shuffled_path = str(tmp_path / 'shuffled.json')
    json.dump(shuffled, open(shuffled_path, 'w'))
    other = _dataset(data, ann_file=shuffled_path)
    for i, record in enumerate(data['manifest']['splits']['train']):
        info, info2 = dataset.get_data_info(i), other.get_data_info(i)
        assert info['segments_info'] == info2['segments_info']
        assert info['img_id'] == record['image_id']
        assert osp.isfile(info['img_path']) and info['img_path'].endswith(record['file_name'])
        assert info['seg_map_path'].endswith(record['image_id'] + '_gtFine_panoptic.png')
        expected = _expected_segments(record)
        got = {s['id']: (s['category'], s['is_thing'], s['bbox']) for s in info['segments_info']}
        assert got == expected
        assert sorted((x['bbox'], x['bbox_label']) for x in info['instances']) == sorted(
            (v[2], v[0]) for v in expected.values() if v[1])


def test_loaded_maps_equal_raw_gtfine(data):
    """gt_seg_map / gt_masks from the pipeline vs. the raw labelIds / instanceIds PNGs."""
    dataset = _dataset(data, split='val')
    pipeline = Compose([
        TRANSFORMS.build(dict(type='LoadImageFromFile')),
        TRANSFORMS.build(
            dict(
                type='LoadCheckedPanopticAnnotations',
                with_bbox=True,
                with_mask=True,
                with_seg=True))
    ])
    record = data['manifest']['splits']['val'][0]
    results = pipeline(dataset.get_data_info(0))
    city = record['file_name'].split('/')[0]
    gt_dir = osp.join(data['data_root'], 'gtFine', 'val', city)
    label_ids = np.asarray(
        Image.open(osp.join(gt_dir, record['image_id'] + '_gtFine_labelIds.png')))
    instance_ids = np.asarray(
        Image.open(osp.join(gt_dir, record['image_id'] + '_gtFine_instanceIds.png')))
    lut = np.full(256, 255, dtype=np.uint8)
    for label, label_id in enumerate(CITYSCAPES_LABEL_IDS):
        lut[label_id] = label
    np.testing.assert_array_equal(results['gt_seg_map'], lut[label_ids])
    thing_ids = sorted(i for i in np.unique(instance_ids) if i >= 1000)
    masks = results['gt_masks'].masks
    assert len(masks) == len(thing_ids) == len(results['gt_bboxes'])
    for mask, inst_id in zip(masks, thing_ids):
        np.testing.assert_array_equal(mask.astype(bool), instance_ids == inst_id)
    assert results['gt_bboxes_labels'].tolist() == [
        CITYSCAPES_LABEL_IDS.index(i // 1000) for i in thing_ids
    ]


def test_bad_annotation_files(data, tmp_path):
    good = json.load(open(data['train_ann_path']))
    path = str(tmp_path / 'bad.json')
    missing = dict(good, categories=[c for c in good['categories'] if c['name'] != 'rider'])
    json.dump(missing, open(path, 'w'))
    with pytest.raises(ValueError, match=r"bad\.json: no category named 'rider'"):
        _dataset(data, ann_file=path)
    flipped = dict(
        good, categories=[dict(c, isthing=int(c['name'] == 'road')) for c in good['categories']])
    json.dump(flipped, open(path, 'w'))
    with pytest.raises(ValueError, match=r"bad\.json: category 'person' .* isthing=0"):
        _dataset(data, ann_file=path)
    open(path, 'w').write('{"images": [')
    with pytest.raises(ValueError, match=r'bad\.json: not a valid json'):
        _dataset(data, ann_file=path)
    json.dump(dict(good, annotations=good['annotations'][1:]), open(path, 'w'))
    with pytest.raises(ValueError, match='has no entry in "annotations"'):
        _dataset(data, ann_file=path)
