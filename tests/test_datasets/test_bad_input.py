# Copyright (c) mmibs contributors. All rights reserved.
"""Bad dataset input fails with an error naming the file and the cause.

Missing files and empty datasets fail when the dataset is built; a PNG that does not fit its json
entry or its image fails when the pipeline loads it (``LoadCheckedPanopticAnnotations``). Each case
breaks one thing of a tiny valid set; the valid set itself loads cleanly.
"""
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmibs.datasets import MapillaryVistasPanopticDataset, ThingsFirstPanopticDataset
from mmibs.registry import TRANSFORMS
from projects.toy_cityscapes.synthetic import make_converted_vistas, write_tiny_coco_panoptic


def _pipeline(loader: str = 'LoadCheckedPanopticAnnotations') -> list:
    return [
        TRANSFORMS.build(dict(type='LoadImageFromFile')),
        TRANSFORMS.build(dict(type=loader, with_bbox=True, with_mask=True, with_seg=True)),
    ]


@pytest.fixture
def tiny(tmp_path):
    """A fresh copy of a valid 2-image set per test (the tests break it in place)."""
    info = write_tiny_coco_panoptic(str(tmp_path / 'tiny') + '/', num_images=2)
    info['ann_path'] = osp.join(info['data_root'], info['ann_file'])
    return info


def _dataset(info: dict, **kwargs) -> ThingsFirstPanopticDataset:
    args = dict(
        data_root=info['data_root'],
        ann_file=info['ann_file'],
        data_prefix=dict(img=info['img_prefix'], seg=info['seg_prefix']),
        metainfo=info['metainfo'],
        pipeline=_pipeline(),
        filter_cfg=None)
    args.update(kwargs)
    return ThingsFirstPanopticDataset(**args)


def _edit_json(info: dict, edit) -> None:
    with open(info['ann_path']) as f:
        data = json.load(f)
    edit(data)
    with open(info['ann_path'], 'w') as f:
        json.dump(data, f)


def _png_ids(path: str) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert('RGB')).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256**2 * rgb[..., 2]


def test_valid_set_loads_and_matches_the_png(tiny):
    """Control: the intact set passes every check, and the loaded masks are the PNG's."""
    dataset = _dataset(tiny)
    assert len(dataset) == 2
    assert dataset[0]['json_segment_ids'] == [1, 2, 3, 4]
    ids = _png_ids(osp.join(tiny['data_root'], tiny['seg_prefix'], '000000.png'))
    masks = dataset[0]['gt_masks'].masks  # things in json order: car 2, car 3, person 4
    for mask, seg_id in zip(masks, (2, 3, 4)):
        np.testing.assert_array_equal(mask, ids == seg_id)


def test_missing_png_or_image_fails_at_build(tiny):
    png = osp.join(tiny['data_root'], tiny['seg_prefix'], '000001.png')
    os.remove(png)
    with pytest.raises(FileNotFoundError) as err:
        _dataset(tiny)
    message = str(err.value)
    assert message.startswith(tiny['ann_path'])
    assert f'seg_map_path={png}' in message and "image id 1" in message
    img = osp.join(tiny['data_root'], tiny['img_prefix'], '000000.jpg')
    os.remove(img)
    with pytest.raises(FileNotFoundError, match=r'2 file\(s\).*img_path=' + img):
        _dataset(tiny)


def test_png_id_missing_from_the_json_fails_when_loaded(tiny):
    # image 0's json entry loses its person segment (id 4), which its PNG still has
    _edit_json(tiny, lambda d: d['annotations'][0]['segments_info'].pop())
    dataset = _dataset(tiny)
    assert dataset[1]['gt_masks'].masks.shape[0] == 3  # image 1 is intact
    png = osp.join(tiny['data_root'], tiny['seg_prefix'], '000000.png')
    with pytest.raises(ValueError) as err:
        dataset[0]
    message = str(err.value)
    assert message.startswith(f'{png}: segment id(s) [4] of the panoptic PNG')
    assert 'image 0' in message and '[1, 2, 3]' in message


def test_json_segment_outside_the_classes_is_not_an_error(tiny):
    """A json category left out of ``classes`` becomes void; its PNG id is known, no error."""
    info = dict(
        tiny,
        metainfo=dict(classes=('car', 'road'), thing_classes=('car', ), stuff_classes=('road', )))
    sample = _dataset(info)[0]
    assert sample['gt_masks'].masks.shape[0] == 2  # the two cars; the person is void
    assert (sample['gt_seg_map'] == 255).any()


def test_image_of_another_size_fails_when_loaded(tiny):
    img = osp.join(tiny['data_root'], tiny['img_prefix'], '000001.jpg')
    Image.open(img).resize((48, 32)).save(img)
    dataset = _dataset(tiny)
    dataset[0]  # the other image is fine
    png = osp.join(tiny['data_root'], tiny['seg_prefix'], '000001.png')
    with pytest.raises(ValueError) as err:
        dataset[1]
    assert str(err.value).startswith(f'{png}: panoptic PNG of size (H, W)=(64, 96), but its '
                                     f'image {img} is (32, 48)')


def test_json_size_differs_from_the_png(tiny):

    def shrink(data):
        data['images'][1]['height'] = 60

    _edit_json(tiny, shrink)
    with pytest.raises(
            ValueError,
            match=r"\(H, W\)=\(64, 96\), but the json gives height, "
            r"width=\(60, 96\) for image 1"):
        _dataset(tiny)[1]


def test_empty_dataset_fails_at_build(tiny):
    _edit_json(tiny, lambda d: (d['images'].clear(), d['annotations'].clear()))
    with pytest.raises(ValueError) as err:
        _dataset(tiny)
    assert str(err.value) == (f'ThingsFirstPanopticDataset: empty dataset: the json lists no image '
                              f'in ann_file={tiny["ann_path"]}')
    with pytest.raises(ValueError, match='empty dataset: the json lists no image'):
        _dataset(tiny, test_mode=True)


def test_filter_that_drops_every_image_fails_at_build(tiny):
    with pytest.raises(
            ValueError,
            match=r"empty dataset: no image is left after "
            r"filter_cfg=\{'min_size': 100\} in ann_file=" + tiny['ann_path']):
        _dataset(tiny, filter_cfg=dict(min_size=100))
    assert len(_dataset(tiny, filter_cfg=dict(min_size=64))) == 2


def test_vistas_json_of_the_wrong_version(tmp_path):
    """The Vistas datasets name the json, the category count and the version it looks like."""
    data = make_converted_vistas(
        str(tmp_path / 'vistas'), num_train=1, num_val=0, height=64, width=64)
    args = dict(
        data_root=data['data_root'],
        ann_file=data['train_ann_file'],
        data_prefix=data['train_data_prefix'],
        pipeline=_pipeline(),
        filter_cfg=None)
    assert len(MapillaryVistasPanopticDataset(**args)) == 1  # v1.2 json, v1.2 dataset
    with pytest.raises(ValueError, match=data['train_ann_file'] + r': 65 categories.*v2\.0'):
        MapillaryVistasPanopticDataset(version='v2.0', **args)


def test_coco_panoptic_dataset_of_mmdet_is_unchanged(tiny):
    """mmdet's own dataset (no ``json_segment_ids``) keeps mmdet's loading, unknown ids void,
    through the checked loader as through mmdet's."""
    from mmdet.datasets import CocoPanopticDataset
    _edit_json(tiny, lambda d: d['annotations'][0]['segments_info'].pop())
    samples = []
    for loader in ('LoadCheckedPanopticAnnotations', 'LoadPanopticAnnotations'):
        dataset = CocoPanopticDataset(
            data_root=tiny['data_root'],
            ann_file=tiny['ann_file'],
            data_prefix=dict(img=tiny['img_prefix'], seg=tiny['seg_prefix']),
            metainfo=tiny['metainfo'],
            pipeline=_pipeline(loader),
            filter_cfg=None)
        sample = dataset[0]
        assert 'json_segment_ids' not in sample
        assert sample['gt_masks'].masks.shape[0] == 2 and (sample['gt_seg_map'] == 255).any()
        samples.append(sample)
    np.testing.assert_array_equal(samples[0]['gt_seg_map'], samples[1]['gt_seg_map'])
    np.testing.assert_array_equal(samples[0]['gt_masks'].masks, samples[1]['gt_masks'].masks)


def test_mmdet_loader_is_not_modified(tiny):
    """Only the named transform checks: mmdet's ``LoadPanopticAnnotations`` on the same broken
    data still loads it silently (the PNG's unknown segment becomes void)."""
    from mmdet.datasets.transforms import LoadPanopticAnnotations

    from mmibs.datasets.transforms import LoadCheckedPanopticAnnotations
    assert LoadCheckedPanopticAnnotations._load_masks_and_semantic_segs is not \
        LoadPanopticAnnotations._load_masks_and_semantic_segs
    assert LoadPanopticAnnotations._load_masks_and_semantic_segs.__module__.startswith('mmdet.')
    _edit_json(tiny, lambda d: d['annotations'][0]['segments_info'].pop())
    sample = _dataset(tiny, pipeline=_pipeline('LoadPanopticAnnotations'))[0]
    assert sample['gt_masks'].masks.shape[0] == 2 and (sample['gt_seg_map'] == 255).any()
    with pytest.raises(ValueError, match='segment id'):
        _dataset(tiny)[0]
