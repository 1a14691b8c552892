# Copyright (c) mmibs contributors. All rights reserved.
"""Crowd regions in the crops, as released: the baseline crop and crop sampling can centre a crop
on a crowd region; ``include_crowd=False`` keeps the non-crowd-only behaviour."""
import json
import os.path as osp

import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmibs.datasets import CropSamplingDataset
from mmibs.datasets.transforms import RandomCropWithInstance, current_boxes
from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic


def _centre_in_crop(box, results):
    """Whether the centre pixel of ``box`` (original pixels) lies in the cropped image."""
    x1, y1, x2, y2 = current_boxes(np.asarray([box]), results)[0]
    h, w = results['img'].shape[:2]
    return 0 <= (x1 + x2) / 2 < w and 0 <= (y1 + y2) / 2 < h


def _crop_results():
    """A 60x200 image, resized x2 before the crop: one car instance (left), one crowd box
    loaded as an ignored instance (middle) and one crowd region only in ``segments_info``
    (right), far enough apart that a 20x40 crop holds one centre at most."""
    h, w = 120, 400
    boxes = np.array([[10, 40, 30, 60], [190, 40, 210, 60]], dtype=np.float32)
    masks = np.zeros((2, h, w), dtype=np.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.astype(int)):
        mask[y1:y2, x1:x2] = 1
    return dict(
        img=np.zeros((h, w, 3), dtype=np.uint8),
        img_shape=(h, w),
        ori_shape=(60, 200),
        homography_matrix=np.diag([2.0, 2.0, 1.0]).astype(np.float32),
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.array([0, 0]),
        gt_ignore_flags=np.array([False, True]),
        gt_masks=BitmapMasks(masks, h, w),
        segments_info=[
            dict(id=1, category=0, is_thing=True, iscrowd=0, bbox=[5, 20, 15, 30]),
            dict(id=2, category=0, is_thing=False, iscrowd=1, bbox=[180, 20, 190, 30]),
        ])


@pytest.mark.parametrize('include_crowd', [True, False])
def test_baseline_crop_draws_crowd_boxes(include_crowd):
    transform = RandomCropWithInstance(crop_size=(40, 20), include_crowd=include_crowd)
    # centres in original pixels: the car, the ignored (crowd) instance, the crowd segment
    centres = [[5, 20, 15, 30], [95, 20, 105, 30], [180, 20, 190, 30]]
    np.random.seed(0)
    hits = np.zeros(3, dtype=int)
    for _ in range(300):
        out = transform(_crop_results())
        inside = [_centre_in_crop(box, out) for box in centres]
        assert sum(inside) == 1  # every crop is centred on one candidate
        hits += inside
    if include_crowd:  # uniform over the three thing segments, crowd regions included
        assert (hits > 60).all(), hits
    else:
        assert hits.tolist() == [300, 0, 0]


def test_current_boxes_needs_a_record_of_the_resize():
    results = _crop_results()
    np.testing.assert_allclose(current_boxes(np.array([[1, 2, 3, 4]]), results), [[2, 4, 6, 8]])
    del results['homography_matrix']
    with pytest.raises(KeyError, match='homography_matrix'):
        current_boxes(np.array([[1, 2, 3, 4]]), results)
    results['img'] = np.zeros((60, 200, 3), dtype=np.uint8)  # original size: identity
    np.testing.assert_allclose(current_boxes(np.array([[1, 2, 3, 4]]), results), [[1, 2, 3, 4]])


@pytest.fixture
def tiny_with_crowd(tmp_path):
    """The tiny set with the right car of every image marked crowd (segment 3)."""
    info = write_tiny_coco_panoptic(str(tmp_path / 'tiny') + '/', num_images=2)
    path = osp.join(info['data_root'], info['ann_file'])
    with open(path) as f:
        data = json.load(f)
    for ann in data['annotations']:
        for seg in ann['segments_info']:
            seg['iscrowd'] = int(seg['id'] == 3)
    with open(path, 'w') as f:
        json.dump(data, f)
    return info


def _wrapper(info, **kwargs):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
        dict(
            type='ResizeToSegmentScale',
            side_min=8,
            side_max=1000,
            overall_max=2000,
            stuff_resize=dict(type='Resize', scale_factor=1.0, keep_ratio=True)),
        dict(type='RandomCropWithInstance', crop_size=(24, 16), box_source='sampled_segment'),
    ]
    return CropSamplingDataset(
        dataset=dict(
            type='ThingsFirstPanopticDataset',
            data_root=info['data_root'],
            ann_file=info['ann_file'],
            data_prefix=dict(img=info['img_prefix'], seg=info['seg_prefix']),
            metainfo=info['metainfo']),
        pipeline=pipeline,
        scales=(16, ),
        **kwargs)


@pytest.mark.parametrize('include_crowd', [True, False])
def test_crop_sampling_draws_crowd_segments(tiny_with_crowd, include_crowd):
    wrapper = _wrapper(tiny_with_crowd, include_crowd=include_crowd)
    car = wrapper.labels.index(0)
    # The index counts non-crowd segments either way: both images hold the (non-crowd) left car.
    assert sorted(wrapper.images_per_label[0]) == [0, 1]
    np.random.seed(0)
    drawn = []
    for _ in range(40):
        for crop in wrapper[car]:
            info = crop['crop_sampling']
            drawn.append(info['segment_id'])
            assert info['is_thing']  # a crowd car is a thing: scaled as one
            assert info['iscrowd'] == (info['segment_id'] == 3)
            assert info['instance_index'] == (-1 if info['iscrowd'] else 0)
            assert _centre_in_crop(info['bbox'], crop)
            x1, y1, x2, y2 = current_boxes(np.asarray([info['bbox']]), crop)[0]
            assert np.sqrt((x2 - x1) * (y2 - y1)) == pytest.approx(16, rel=0.05)
    assert set(drawn) == ({2, 3} if include_crowd else {2})
