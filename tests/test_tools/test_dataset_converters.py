# Copyright (c) mmibs contributors. All rights reserved.
"""The converters on synthetic raw datasets: they must reproduce what the generator drew.

The generator's manifest is measured on its own maps (after occlusion), independently of the
converters; each converter output is decoded here (``mmibs.utils.panoptic_ids.rgb2id``, checked
against panopticapi's in the evaluation tests) and compared segment by segment.
"""
import importlib.util
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from projects.toy_cityscapes import make_synthetic
from projects.toy_cityscapes.synthetic import make_synthetic_cityscapes, make_synthetic_vistas
from mmibs.utils.panoptic_ids import rgb2id

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CS_THINGS = {24, 25, 26, 27, 28, 31, 32, 33}


def _tool(name):
    path = osp.join(REPO, 'tools', 'dataset_converters', name + '.py')
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rgb2id(path):
    return rgb2id(np.asarray(Image.open(path).convert('RGB')))


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    return [
        int(xs.min()),
        int(ys.min()),
        int(xs.max() - xs.min() + 1),
        int(ys.max() - ys.min() + 1)
    ]


def _key(seg):
    return (seg['id'], seg['category_id'], seg['area'], tuple(seg['bbox']), int(seg['iscrowd']))


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cs_raw'))
    manifest = make_synthetic_cityscapes(
        root, num_train=2, num_val=1, height=128, width=256, seed=3)
    results = _tool('cityscapes_panoptic').main([root, '--quiet'])
    return root, manifest, results


def test_cityscapes_converter_reproduces_the_drawn_segments(cityscapes):
    root, manifest, results = cityscapes
    for split in ('train', 'val'):
        data = json.load(open(results[split]['ann_file']))
        assert len(data['images']) == len(manifest['splits'][split])
        # Category ids are labelIds, things first; images point at the real files.
        cat_ids = [c['id'] for c in data['categories']]
        assert cat_ids == [24, 25, 26, 27, 28, 31, 32, 33, 7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23]
        anns = {a['image_id']: a for a in data['annotations']}
        for image, record in zip(data['images'], manifest['splits'][split]):
            assert image['id'] == record['image_id'] and isinstance(image['id'], str)
            assert image['file_name'] == record['file_name']
            assert osp.isfile(osp.join(root, 'leftImg8bit', split, image['file_name']))
            ann = anns[image['id']]
            assert sorted(map(_key, ann['segments_info'])) == sorted(map(_key, record['segments']))
            # Several same-class instances, a crowd region: what the generator promises.
            cars = [s for s in record['segments'] if s['category_id'] == 26 and not s['iscrowd']]
            assert len(cars) >= 3
            assert any(s['iscrowd'] and s['category_id'] in CS_THINGS for s in record['segments'])
            # The PNG holds exactly these segments with these areas; void (id 0) elsewhere.
            ids = _rgb2id(osp.join(results[split]['seg_dir'], ann['file_name']))
            values, counts = np.unique(ids, return_counts=True)
            area = dict(zip(values.tolist(), counts.tolist()))
            assert area.pop(0) == record['void_area'] > 0
            assert area == {s['id']: s['area'] for s in record['segments']}
            for seg in ann['segments_info']:
                assert _bbox(ids == seg['id']) == seg['bbox']


def test_cityscapes_converter_instances_touch(cityscapes):
    """At least two car instances share a border (4-neighbourhood) in every image."""
    root, manifest, results = cityscapes
    data = json.load(open(results['train']['ann_file']))
    for ann in data['annotations']:
        ids = _rgb2id(osp.join(results['train']['seg_dir'], ann['file_name']))
        cars = {s['id'] for s in ann['segments_info'] if s['category_id'] == 26}
        pairs = set()
        for a, b in ((ids[:, 1:], ids[:, :-1]), (ids[1:, :], ids[:-1, :])):
            touching = (a != b) & np.isin(a, list(cars)) & np.isin(b, list(cars))
            pairs |= set(zip(a[touching].tolist(), b[touching].tolist()))
        assert pairs, f'no touching cars in {ann["image_id"]}'


def test_cityscapes_converter_errors_name_the_file(tmp_path):
    root = str(tmp_path / 'cs')
    make_synthetic_cityscapes(root, num_train=2, num_val=0, height=64, width=128, seed=1)
    convert = _tool('cityscapes_panoptic').main
    gt = sorted(
        osp.join(d, f) for d, _, fs in os.walk(osp.join(root, 'gtFine')) for f in fs
        if f.endswith('_instanceIds.png'))
    # A truncated annotation PNG.
    with open(gt[0], 'rb') as f:
        payload = f.read()
    with open(gt[0], 'wb') as f:
        f.write(payload[:len(payload) // 2])
    with pytest.raises(ValueError, match=osp.basename(gt[0])):
        convert([root, '--splits', 'train', '--quiet'])
    with open(gt[0], 'wb') as f:
        f.write(payload)
    # A missing image.
    image = gt[1].replace('gtFine', 'leftImg8bit', 1).replace('_gtFine_instanceIds', '_leftImg8bit')
    os.rename(image, image + '.bak')
    with pytest.raises(FileNotFoundError, match=osp.basename(image)):
        convert([root, '--splits', 'train', '--quiet'])
    # A missing split folder.
    with pytest.raises(FileNotFoundError, match='gtFine/val'):
        convert([root, '--splits', 'val', '--quiet'])
    # Nothing half-written was left behind.
    assert not osp.exists(osp.join(root, 'annotations', 'cityscapes_panoptic_train.json'))
    assert os.listdir(osp.join(root, 'annotations')) == []


@pytest.fixture(scope='module')
def vistas(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vistas_raw'))
    manifest = make_synthetic_vistas(root, num_train=2, num_val=1, height=96, width=160, seed=5)
    results = _tool('mapillary_vistas_panoptic').main([root, '--instances', '--quiet'])
    return root, manifest, results


def test_vistas_converter_reproduces_the_drawn_segments(vistas):
    root, manifest, results = vistas
    from mmibs.datasets.mapillary_vistas_panoptic import VISTAS_V12_CATEGORIES
    thing_ids = {c['id'] for c in VISTAS_V12_CATEGORIES if c['isthing']}
    for raw, split in (('training', 'train'), ('validation', 'val')):
        data = json.load(open(results[raw]['ann_file']))
        flags = [c['isthing'] for c in data['categories']]
        assert flags == sorted(flags, reverse=True) and sum(flags) == 37 and len(flags) == 65
        anns = {a['image_id']: a for a in data['annotations']}
        for record in manifest['splits'][raw]:
            ann = anns[record['image_id']]
            assert sorted(map(_key, ann['segments_info'])) == sorted(map(_key, record['segments']))
            ids = _rgb2id(osp.join(results[raw]['seg_dir'], ann['file_name']))
            values, counts = np.unique(ids, return_counts=True)
            area = dict(zip(values.tolist(), counts.tolist()))
            assert area.pop(0) == record['void_area'] > 0
            assert area == {s['id']: s['area'] for s in record['segments']}
        # Instance json: one RLE per thing segment of the manifest, same area, box and crowd flag.
        from pycocotools import mask as mask_utils
        inst = json.load(open(results[raw]['instance_file']))
        assert [c['id'] for c in inst['categories']] == sorted(thing_ids)
        expected = sorted((r['image_id'], s['category_id'], s['area'], s['iscrowd'])
                          for r in manifest['splits'][raw] for s in r['segments']
                          if s['category_id'] in thing_ids)
        got = sorted(
            (a['image_id'], a['category_id'], int(mask_utils.area(a['segmentation'])), a['iscrowd'])
            for a in inst['annotations'])
        assert got == expected and all(a['area'] == mask_utils.area(a['segmentation'])
                                       for a in inst['annotations'])
        assert len({a['id'] for a in inst['annotations']}) == len(inst['annotations'])


def test_vistas_converter_errors(tmp_path):
    root = str(tmp_path / 'vistas')
    make_synthetic_vistas(root, num_train=1, num_val=0, height=64, width=96, seed=2)
    convert = _tool('mapillary_vistas_panoptic').main
    json_path = osp.join(root, 'training', 'v1.2', 'panoptic', 'panoptic_2018.json')
    # A v1.2 json where a v2.0 json is expected.
    v2_dir = osp.join(root, 'training', 'v2.0', 'panoptic')
    os.makedirs(v2_dir)
    shutil.copy(json_path, osp.join(v2_dir, 'panoptic_2020.json'))
    with pytest.raises(ValueError, match=r'65 categories.*v2\.0 panoptic has 123 or 124.*v1\.2'):
        convert([root, '--version', 'v2.0', '--splits', 'training', '--quiet'])
    # A v2.0-sized category list in a v1.2 json.
    data = json.load(open(json_path))
    good = json.dumps(data)
    data['categories'] = data['categories'] + [
        dict(id=100 + k, name=f'extra {k}', isthing=0, color=[0, 0, 0]) for k in range(58)
    ]
    json.dump(data, open(json_path, 'w'))
    with pytest.raises(ValueError, match=r'123 categories.*pass version=.v2\.0.'):
        convert([root, '--splits', 'training', '--quiet'])
    # A malformed json.
    open(json_path, 'w').write(good[:100])
    with pytest.raises(ValueError, match='panoptic_2018.json: not a valid json'):
        convert([root, '--splits', 'training', '--quiet'])
    # A missing panoptic PNG and a corrupted one.
    open(json_path, 'w').write(good)
    png = osp.join(osp.dirname(json_path), json.loads(good)['annotations'][0]['file_name'])
    payload = open(png, 'rb').read()
    os.remove(png)
    with pytest.raises(FileNotFoundError, match=osp.basename(png)):
        convert([root, '--splits', 'training', '--quiet'])
    open(png, 'wb').write(payload[:40])
    with pytest.raises(ValueError, match=osp.basename(png)):
        convert([root, '--splits', 'training', '--instances', '--quiet'])
    assert not osp.exists(
        osp.join(root, 'annotations', 'mapillary_vistas_v1.2_panoptic_train.json'))


def test_crop_sampling_index_tool(cityscapes, tmp_path):
    root, manifest, results = cityscapes
    out = str(tmp_path / 'index.json')
    index = _tool('crop_sampling_index').main([results['train']['ann_file'], '--out', out])
    assert json.load(open(out)) == json.loads(json.dumps(index))
    # Naive reference from the manifest: images with a non-crowd segment of each category.
    expected = {}
    for record in manifest['splits']['train']:
        for cat in sorted({s['category_id'] for s in record['segments'] if not s['iscrowd']}):
            expected.setdefault(str(cat), []).append(record['image_id'])
    assert index['imgs_per_cat'] == expected
    assert {c['id'] for c in index['categories']} == {int(k) for k in expected}


def test_make_synthetic_tool_full_resolution(tmp_path):
    """The CLI writes 1024x2048 images with the real label ids (one image: about 2 s)."""
    out = str(tmp_path / 'cs_full')
    manifest = make_synthetic.main(
        ['--layout', 'cityscapes', '--out', out, '--num-train', '1', '--num-val', '0'])
    record = manifest['splits']['train'][0]
    stem = record['image_id']
    city = record['file_name'].split('/')[0]
    img = Image.open(osp.join(out, 'leftImg8bit', 'train', city, stem + '_leftImg8bit.png'))
    assert img.size == (2048, 1024) and img.mode == 'RGB'
    labels = np.asarray(
        Image.open(osp.join(out, 'gtFine', 'train', city, stem + '_gtFine_labelIds.png')))
    instances = np.asarray(
        Image.open(osp.join(out, 'gtFine', 'train', city, stem + '_gtFine_instanceIds.png')))
    assert set(np.unique(labels)) <= {0, 1, 7, 8, 11, 21, 23, 24, 26, 27, 33}
    # Instance ids encode the labelId; stuff, crowd and void carry the bare labelId.
    things = instances >= 1000
    assert (instances[things] // 1000 == labels[things]).all()
    assert (instances[~things] == labels[~things]).all()
    cars = [s for s in record['segments'] if s['category_id'] == 26]
    assert len(cars) >= 3 and min(s['area'] for s in cars) > 0.005 * 1024 * 2048
