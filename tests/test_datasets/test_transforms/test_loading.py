# Copyright (c) mmibs contributors. All rights reserved.
"""LoadCheckedPanopticAnnotations works without panopticapi and loads what mmdet's loader loads.

mmdet's ``LoadPanopticAnnotations`` needs panopticapi for ``rgb2id``; mmibs' loader decodes with
its own. With panopticapi importable, mmibs' loader must give mmdet's masks and semantic map (same
values, same dtype); with ``import panopticapi`` failing, it must still build and give them.
"""
import sys

import numpy as np
import pytest

from mmibs.datasets import ThingsFirstPanopticDataset
from mmibs.datasets.transforms.loading import panopticapi_rgb2id
from mmibs.registry import TRANSFORMS
from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic

LOADER = dict(with_bbox=True, with_mask=True, with_seg=True)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return write_tiny_coco_panoptic(str(tmp_path_factory.mktemp('tiny')) + '/', num_images=2)


def _load_all(info: dict, loader: str, dataset_type: str) -> list:
    """Every sample of the tiny set through ``LoadImageFromFile`` and ``loader``."""
    from mmdet.datasets import CocoPanopticDataset
    dataset_class = dict(
        things_first=ThingsFirstPanopticDataset, mmdet=CocoPanopticDataset)[dataset_type]
    pipeline = [
        TRANSFORMS.build(dict(type='LoadImageFromFile')),
        TRANSFORMS.build(dict(type=loader, **LOADER)),
    ]
    dataset = dataset_class(
        data_root=info['data_root'],
        ann_file=info['ann_file'],
        data_prefix=dict(img=info['img_prefix'], seg=info['seg_prefix']),
        metainfo=info['metainfo'],
        pipeline=pipeline,
        filter_cfg=None)
    return [dataset[k] for k in range(len(dataset))]


def _assert_same(samples: list, reference: list) -> None:
    assert len(samples) == len(reference) > 0
    for sample, ref in zip(samples, reference):
        assert sample['gt_seg_map'].dtype == ref['gt_seg_map'].dtype
        np.testing.assert_array_equal(sample['gt_seg_map'], ref['gt_seg_map'])
        np.testing.assert_array_equal(sample['gt_masks'].masks, ref['gt_masks'].masks)
        np.testing.assert_array_equal(sample['gt_bboxes'].numpy(), ref['gt_bboxes'].numpy())
        np.testing.assert_array_equal(sample['gt_bboxes_labels'], ref['gt_bboxes_labels'])
        # the set is not trivial: things and stuff are loaded
        assert sample['gt_masks'].masks.shape[0] >= 2 and (sample['gt_seg_map'] != 255).all()


def test_rgb2id_is_panopticapis():
    from panopticapi.utils import rgb2id as panopticapi_rgb2id_reference
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    rgb[0, 0] = 255  # the largest id, 2**24 - 1
    ids = panopticapi_rgb2id(rgb)
    reference = panopticapi_rgb2id_reference(rgb)
    assert ids.dtype == reference.dtype
    np.testing.assert_array_equal(ids, reference)
    assert ids[0, 0] == 2**24 - 1


@pytest.mark.parametrize('dataset_type', ['things_first', 'mmdet'])
def test_loader_without_panopticapi_gives_mmdets_masks(tiny, monkeypatch, dataset_type):
    """``things_first`` runs the checked loading, ``mmdet`` (no ``json_segment_ids``) mmdet's."""
    reference = _load_all(tiny, 'LoadPanopticAnnotations', dataset_type)  # panopticapi's ids
    with_panopticapi = _load_all(tiny, 'LoadCheckedPanopticAnnotations', dataset_type)
    _assert_same(with_panopticapi, reference)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, 'panopticapi', None)  # `import panopticapi` raises
        with pytest.raises(ImportError, match='panopticapi'):
            TRANSFORMS.build(dict(type='LoadPanopticAnnotations', **LOADER))
        without_panopticapi = _load_all(tiny, 'LoadCheckedPanopticAnnotations', dataset_type)
    _assert_same(without_panopticapi, reference)
    import panopticapi  # noqa: F401  (restored after the context)
