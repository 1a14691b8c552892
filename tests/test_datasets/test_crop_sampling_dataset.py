# Copyright (c) mmibs contributors. All rights reserved.
"""CropSamplingDataset + pair_collate on converted synthetic Cityscapes (``docs/data.md``)."""
import json
import math

import numpy as np
import pytest
from torch.utils.data import DataLoader

from mmibs.datasets import CropSamplingDataset, pair_collate
from mmibs.datasets.cityscapes_panoptic import CITYSCAPES_LABEL_IDS
from mmibs.datasets.converters import write_crop_sampling_index
from projects.toy_cityscapes.synthetic import make_converted_cityscapes

SCALES = (16, 32, 48)
CROP_HW = (48, 96)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_converted_cityscapes(
        str(tmp_path_factory.mktemp('cs')), num_train=3, num_val=0, height=128, width=256, seed=21)


def _wrapper(data, **kwargs):
    # Limits loose enough that the target scale is never clamped at this image size.
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
        dict(
            type='ResizeToSegmentScale',
            side_min=16,
            side_max=1000,
            overall_max=2000,
            stuff_resize=dict(
                type='RandomResize', scale=(256, 128), ratio_range=(0.5, 2.0), keep_ratio=True)),
        dict(
            type='RandomCropWithInstance',
            crop_size=(CROP_HW[1], CROP_HW[0]),
            box_source='sampled_segment',
            recompute_bbox=True),
        dict(type='RandomFlip', prob=0.5),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_shape', 'ori_shape', 'scale_factor', 'crop_sampling'))
    ]
    return CropSamplingDataset(
        dataset=dict(
            type='CityscapesPanopticDataset',
            data_root=data['data_root'],
            ann_file=data['train_ann_file'],
            data_prefix=data['train_data_prefix']),
        pipeline=pipeline,
        scales=SCALES,
        **kwargs)


def _naive_index(manifest):
    """label -> image ids with a non-crowd segment of it, from the generator's record."""
    index = {}
    for record in manifest['splits']['train']:
        for cat in {s['category_id'] for s in record['segments'] if not s['iscrowd']}:
            index.setdefault(CITYSCAPES_LABEL_IDS.index(cat), set()).add(record['image_id'])
    return index


def test_one_item_per_sampleable_category(data, tmp_path):
    wrapper = _wrapper(data)
    naive = _naive_index(data['manifest'])
    assert wrapper.labels == sorted(naive) and len(wrapper) == len(naive)
    img_id = [wrapper.dataset.get_data_info(i)['img_id'] for i in range(len(wrapper.dataset))]
    assert {k: {img_id[i] for i in v} for k, v in wrapper.images_per_label.items()} == naive
    # The converter's index file gives the same index; a stale one names itself.
    index_file = str(tmp_path / 'index.json')
    index = write_crop_sampling_index(data['train_ann_path'], index_file)
    assert _wrapper(data, index_file=index_file).images_per_label == wrapper.images_per_label
    index['imgs_per_cat'][str(index['cat_ids'][0])].append('nowhere_000000_000019')
    json.dump(index, open(index_file, 'w'))
    with pytest.raises(ValueError, match=r"index\.json: image 'nowhere_000000_000019'"):
        _wrapper(data, index_file=index_file)


def test_pairs_hold_the_category_at_the_drawn_scale(data):
    wrapper = _wrapper(data)
    np.random.seed(0)
    for idx in range(len(wrapper)):
        for _ in range(3):
            pair = wrapper[idx]
            assert len(pair) == 2
            infos = [s['data_samples'].metainfo['crop_sampling'] for s in pair]
            label = wrapper.labels[idx]
            assert infos[0]['scale'] == infos[1]['scale'] in SCALES
            for sample, info in zip(pair, infos):
                assert info['label'] == label
                # The crop size, or the whole image when a small scale shrank it below that.
                resized = [round(n * f) for n, f in zip((128, 256), info['resize_ratio'][::-1])]
                assert tuple(sample['inputs'].shape[1:]) == tuple(
                    min(c, r) for c, r in zip(CROP_HW, resized))
                # The crop holds pixels of the drawn category ...
                assert (sample['data_samples'].gt_sem_seg.sem_seg == label).any()
                if not info['is_thing']:
                    continue
                # ... a thing crop still holds the instance (its centre is inside) ...
                if not info['iscrowd']:  # (a crowd region has no instance)
                    assert label in sample['data_samples'].gt_instances.labels.tolist()
                # ... and the image was scaled so that sqrt(box area) equals the drawn scale.
                x1, y1, x2, y2 = info['bbox']
                sx, sy = sample['data_samples'].metainfo['scale_factor']
                assert math.sqrt((x2 - x1) * sx * (y2 - y1) * sy) == pytest.approx(
                    info['scale'], rel=0.03)


def test_seeded_and_collated_at_2k_2k_plus_1(data):
    wrapper = _wrapper(data)
    np.random.seed(3)
    first = [s['inputs'] for s in wrapper[0]]
    np.random.seed(3)
    again = [s['inputs'] for s in wrapper[0]]
    assert all((a == b).all() for a, b in zip(first, again))

    np.random.seed(4)
    loader = DataLoader(wrapper, batch_size=3, shuffle=False, collate_fn=pair_collate)
    batch = next(iter(loader))
    assert len(batch['inputs']) == len(batch['data_samples']) == 6
    labels = [s.metainfo['crop_sampling']['label'] for s in batch['data_samples']]
    assert labels == [wrapper.labels[k] for k in range(3) for _ in range(2)]
    scales = [s.metainfo['crop_sampling']['scale'] for s in batch['data_samples']]
    assert scales[0::2] == scales[1::2]
    # A plain dataset's items pass through unchanged; mixed items are refused.
    plain = pair_collate([dict(inputs=1), dict(inputs=2)])
    assert plain['inputs'] == [1, 2]
    with pytest.raises(ValueError, match='same number of crops'):
        pair_collate([[dict(inputs=1)] * 2, dict(inputs=2)])
