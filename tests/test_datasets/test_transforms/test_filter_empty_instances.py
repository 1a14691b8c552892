# Copyright (c) mmibs contributors. All rights reserved.
"""FilterEmptyInstances: the releases' rules for instances that a crop leaves (nearly) empty."""
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmibs.datasets.transforms import FilterEmptyInstances, RandomCropWithInstance
from mmibs.registry import TRANSFORMS


def _results(pixels=(0, 1, 2, 30), boxes=None, h=20, w=30):
    """One instance per entry of ``pixels``, with that many mask pixels (row-major)."""
    masks = np.zeros((len(pixels), h, w), dtype=np.uint8)
    for i, n in enumerate(pixels):
        masks[i].reshape(-1)[i * 60:i * 60 + n] = 1
    if boxes is None:
        boxes = BitmapMasks(masks, h, w).get_bboxes(HorizontalBoxes).numpy()
    return dict(
        img=np.zeros((h, w, 3), dtype=np.uint8),
        img_shape=(h, w),
        gt_bboxes=HorizontalBoxes(np.asarray(boxes, dtype=np.float32)),
        gt_bboxes_labels=np.arange(len(pixels)),
        gt_ignore_flags=np.zeros(len(pixels), dtype=bool),
        gt_masks=BitmapMasks(masks, h, w))


def _naive_keep(results, min_mask_area, min_box_wh, min_box_area):
    """The rules written out per instance (detectron2's filter_empty_instances and the
    Mask2Former mappers' tests)."""
    keep = []
    for box, mask in zip(results['gt_bboxes'].numpy(), results['gt_masks'].masks):
        w, h = box[2] - box[0], box[3] - box[1]
        ok = int(mask.sum()) >= min_mask_area
        if min_box_wh is not None:
            ok = ok and w > min_box_wh[0] and h > min_box_wh[1]
        if min_box_area is not None:
            ok = ok and w * h > min_box_area
        keep.append(ok)
    return np.array(keep)


PFCN = dict()  # Panoptic FCN: detectron2's filter_empty_instances
M2F_PANOPTIC = dict(min_mask_area=2, min_box_wh=None)  # mask.sum() > 1
M2F_INSTANCE = dict(min_box_wh=None, min_box_area=1)  # box area > 1 and a non-empty mask


@pytest.mark.parametrize('kwargs', [PFCN, M2F_PANOPTIC, M2F_INSTANCE])
def test_rules_of_the_releases(kwargs):
    boxes = [[0, 0, 10, 10], [0, 0, 1, 1], [0, 0, 2, 1], [0, 0, 30, 2]]
    for results in (_results(), _results(boxes=boxes)):
        expected = _naive_keep(results, kwargs.get('min_mask_area', 1),
                               kwargs.get('min_box_wh', (1e-5, 1e-5)), kwargs.get('min_box_area'))
        labels = results['gt_bboxes_labels'][expected]
        out = TRANSFORMS.build(dict(type='FilterEmptyInstances', **kwargs))(results)
        assert out is not None
        np.testing.assert_array_equal(out['gt_bboxes_labels'], labels)
        assert len(out['gt_bboxes']) == len(out['gt_masks']) == len(out['gt_ignore_flags']) == \
            len(labels)
        for mask, label in zip(out['gt_masks'].masks, labels):
            assert mask.sum() == (0, 1, 2, 30)[label]
    # The defaults keep >= 1 pixel; the Mask2Former panoptic setting needs 2.
    assert FilterEmptyInstances()(_results())['gt_bboxes_labels'].tolist() == [1, 2, 3]
    m2f = FilterEmptyInstances(**M2F_PANOPTIC)
    assert m2f(_results())['gt_bboxes_labels'].tolist() == [2, 3]


def test_keeps_the_image_without_instances():
    out = FilterEmptyInstances(min_mask_area=50)(_results())
    assert out is not None and len(out['gt_bboxes']) == 0 and len(out['gt_masks']) == 0
    empty = FilterEmptyInstances()(_results(pixels=()))
    assert empty is not None and len(empty['gt_masks']) == 0
    with pytest.raises(KeyError, match='gt_masks'):
        FilterEmptyInstances()(dict(gt_bboxes=HorizontalBoxes(np.zeros((0, 4), np.float32))))


def test_removes_what_mmdet_random_crop_keeps():
    """An L-shaped object whose box overlaps the crop but whose pixels do not: mmdet's crop keeps
    it with an empty mask (a target without pixels); the filter drops it, the other stays."""
    h, w = 20, 30
    masks = np.zeros((2, h, w), dtype=np.uint8)
    masks[0, 0:20, 0:2] = 1  # vertical bar on the left ...
    masks[0, 18:20, 0:30] = 1  # ... and a bottom bar: the box covers the whole image
    masks[1, 2:6, 20:26] = 1
    boxes = BitmapMasks(masks, h, w).get_bboxes(HorizontalBoxes)
    results = dict(
        img=np.zeros((h, w, 3), dtype=np.uint8),
        img_shape=(h, w),
        gt_bboxes=boxes,
        gt_bboxes_labels=np.array([0, 1]),
        gt_ignore_flags=np.zeros(2, dtype=bool),
        gt_masks=BitmapMasks(masks, h, w))
    crop = RandomCropWithInstance(crop_size=(8, 8), include_crowd=False, recompute_bbox=True)
    np.random.seed(0)
    for _ in range(20):
        cropped = crop(
            dict(results, gt_masks=BitmapMasks(masks.copy(), h, w), gt_bboxes=boxes.clone()))
        areas = cropped['gt_masks'].areas
        if len(areas) == 2 and areas[0] == 0 and areas[1] > 0:
            break
    else:
        pytest.fail('no crop kept the L-shaped instance with an empty mask')
    out = FilterEmptyInstances()(cropped)
    assert out['gt_bboxes_labels'].tolist() == [1]
    assert out['gt_masks'].areas.tolist() == [areas[1]]


def test_small_stuff_regions_become_void_on_request():
    """Mask2Former panoptic drops stuff segments of <= 1 pixel too; with ``min_stuff_area`` they
    become void, so mmdet's head builds no mask target for them."""
    results = _results()
    seg = np.full((20, 30), 5, dtype=np.uint8)  # stuff 5 everywhere ...
    seg[0, 0] = 6  # ... one pixel of stuff 6
    seg[1, 0:2] = 7  # two pixels of stuff 7
    seg[2, 0] = 1  # one pixel of thing class 1: left to the instance rule
    results['gt_seg_map'] = seg.copy()
    transform = FilterEmptyInstances(**M2F_PANOPTIC, min_stuff_area=2, num_things=3)
    out = transform(results)
    expected = seg.copy()
    expected[0, 0] = 255
    np.testing.assert_array_equal(out['gt_seg_map'], expected)
    assert out['gt_seg_map'].dtype == np.uint8
    # Without the option the semantic map is untouched.
    np.testing.assert_array_equal(
        FilterEmptyInstances()(dict(_results(), gt_seg_map=seg))['gt_seg_map'], seg)
    with pytest.raises(ValueError, match='num_things'):
        FilterEmptyInstances(min_stuff_area=2)
