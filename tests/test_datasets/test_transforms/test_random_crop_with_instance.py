# Copyright (c) mmibs contributors. All rights reserved.
"""RandomCropWithInstance: the crop holds the chosen box centre; every valid offset occurs."""
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmibs.datasets.transforms import RandomCropWithInstance


def _results(h=40, w=60):
    """A scene whose pixel values encode their coordinates, one box-shaped instance."""
    ys, xs = np.mgrid[:h, :w]
    img = np.stack([ys, xs, np.zeros_like(ys)], axis=-1).astype(np.uint8)
    mask = np.zeros((1, h, w), dtype=np.uint8)
    mask[0, 10:14, 41:49] = 1
    seg = np.full((h, w), 5, dtype=np.uint8)
    seg[0:8, 0:6] = 7  # a small stuff region (label 7)
    seg[mask[0] > 0] = 0
    return dict(
        img=img,
        img_shape=(h, w),
        gt_seg_map=seg,
        gt_masks=BitmapMasks(mask, h, w),
        gt_bboxes=HorizontalBoxes(np.array([[41, 10, 49, 14]], dtype=np.float32)),
        gt_bboxes_labels=np.array([0]),
        gt_ignore_flags=np.array([False]))


def _naive_offsets(centre, size, length):
    """All offsets whose window [o, o + length) holds the centre pixel (brute force)."""
    pixel = int(np.floor(centre))
    return {o for o in range(size - length + 1) if o <= pixel < o + length}


@pytest.mark.parametrize('crop_hw', [(16, 20), (40, 20), (8, 60)])
def test_crop_contains_box_centre_and_covers_all_offsets(crop_hw):
    np.random.seed(0)
    transform = RandomCropWithInstance(crop_size=(crop_hw[1], crop_hw[0]))
    seen = set()
    for _ in range(400):
        out = transform(_results())
        img = out['img']
        assert img.shape[:2] == crop_hw
        y0, x0 = int(img[0, 0, 0]), int(img[0, 0, 1])  # pixel values are coordinates
        seen.add((y0, x0))
        # The box centre (45, 12) lies in the crop, and the crop is consistent everywhere.
        assert y0 <= 12 < y0 + crop_hw[0] and x0 <= 45 < x0 + crop_hw[1]
        ref = _results()
        np.testing.assert_array_equal(out['gt_seg_map'], ref['gt_seg_map'][y0:y0 + crop_hw[0],
                                                                           x0:x0 + crop_hw[1]])
        np.testing.assert_array_equal(
            out['gt_masks'].masks[0], ref['gt_masks'].masks[0][y0:y0 + crop_hw[0],
                                                               x0:x0 + crop_hw[1]])
    # Each axis draws every valid offset (uniform over the brute-force set), and only those.
    assert {y for y, _ in seen} == _naive_offsets(12, 40, crop_hw[0])
    assert {x for _, x in seen} == _naive_offsets(45, 60, crop_hw[1])


def test_sampled_segment_boxes():
    np.random.seed(1)
    transform = RandomCropWithInstance(crop_size=(10, 6), box_source='sampled_segment')
    for _ in range(100):
        results = _results()
        results['crop_sampling'] = dict(is_thing=False, label=7, instance_index=-1)
        out = transform(results)
        y0, x0 = int(out['img'][0, 0, 0]), int(out['img'][0, 0, 1])
        # Stuff box of label 7 = [0, 0, 6, 8): centre pixel (y 4, x 3).
        assert y0 <= 4 < y0 + 6 and x0 <= 3 < x0 + 10
    with pytest.raises(KeyError, match='crop_sampling'):
        transform(_results())


def test_no_candidate_falls_back_to_uniform_crop():
    np.random.seed(2)
    transform = RandomCropWithInstance(crop_size=(20, 20), include_crowd=False)
    offsets = set()
    for _ in range(300):
        results = _results()
        results['gt_ignore_flags'] = np.array([True])  # the only box is ignored (crowd)
        out = transform(results)
        offsets.add((int(out['img'][0, 0, 0]), int(out['img'][0, 0, 1])))
    # Uniform over all 21 x 41 offsets, not only those holding the box centre.
    assert max(o[0] for o in offsets) == 20 and max(o[1] for o in offsets) == 40
    assert min(o[1] for o in offsets) == 0
    with pytest.raises(ValueError, match='box_source'):
        RandomCropWithInstance(crop_size=(2, 2), box_source='all')
