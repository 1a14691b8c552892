# Copyright (c) mmibs contributors. All rights reserved.
"""Crop sampling: category-uniform pairs of crops at a shared target scale.

The released IBS models train on *crop-sampled* data (``docs/data.md``): the dataset has one item
per category, so a uniform sampler draws categories uniformly; each item is two crops, each from a
random image holding a non-crowd segment of that category, the crop containing the centre of one
segment of that category in the image (crowd regions included, as released) and things resized so
that sqrt(box area) equals a target scale shared by both crops. The two crops of an item go to
batch indices 2k and 2k + 1 (:func:`pair_collate`), which is where IBS's ``pair`` partner
(i XOR 1) finds a same-class, same-size hard negative.

This is a dataset wrapper plus transforms that read the sampled segment, so it works with either
network and is switched on or off independently of IBS.
"""
import copy
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset, Compose, pseudo_collate
from mmengine.registry import FUNCTIONS, DefaultScope

from mmibs.registry import DATASETS, TRANSFORMS
from .base_panoptic import normalize_name
from .utils import load_json


@DATASETS.register_module()
class CropSamplingDataset:
    """Wrap a panoptic dataset so that item k is a pair of crops of category k.

    ``__getitem__`` returns a list of ``num_crops`` packed samples (use
    ``collate_fn=dict(type='pair_collate')``; the dataloader's ``batch_size`` then counts pairs).
    Before its pipeline runs, each crop's data info gets ``crop_sampling``: ``label`` (the drawn
    category's label), ``category`` (its name), ``scale`` (s, shared by the crops of an item),
    ``is_thing`` (the category is a thing class, as the release decides it), ``iscrowd``,
    ``segment_id``, ``bbox`` (xyxy, original pixels) and ``instance_index`` (the segment's row in
    ``instances`` / ``gt_bboxes`` / ``gt_masks``; -1 for stuff and crowd regions).

    Which images and segments are drawn, as the released ``dataset_mapper_sampling.py`` /
    ``mask_former_panoptic_dataset_mapper_cropsampling.py`` with the index of
    ``prepare_*_sampling.py``: an image is drawn among those with at least one non-crowd segment
    of the category, then a segment among *all* its segments of the category, crowd regions
    included (``include_crowd=True``).

    The pipeline should resize with :class:`ResizeToSegmentScale` and crop with
    ``RandomCropWithInstance(box_source='sampled_segment')``; add ``'crop_sampling'`` to
    ``PackDetInputs``' ``meta_keys`` to keep it in the data samples.

    Args:
        dataset (BaseDataset | dict): The wrapped dataset (its own pipeline is not used). Its
            data infos need mmibs' ``segments_info`` (``category``, ``iscrowd``, ``bbox``), as
            :class:`ThingsFirstPanopticDataset` and its subclasses write.
        pipeline (list[dict | callable]): The per-crop pipeline.
        scales (Sequence[float]): Target scales s, one drawn per item. Defaults to
            (32, 64, 128, 256, 512), the released ``NEW_SAMPLING_SCALES``.
        num_crops (int): Crops per item. Defaults to 2.
        index_file (str, optional): A crop sampling index written by
            ``tools/dataset_converters/crop_sampling_index.py``; without it the index is computed
            from the wrapped dataset (same content). Defaults to None.
        max_refetch (int): Redraws when the pipeline returns None. Defaults to 100.
        lazy_init (bool): Defer loading the wrapped dataset. Defaults to False.
        backend_args (dict, optional): File backend for ``index_file``. Defaults to None.
        include_crowd (bool): Draw the segment of an image among all its segments of the
            category, crowd regions included (the release). False draws among the non-crowd
            segments only. The image index is the same either way. Defaults to True.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 pipeline: List[Union[dict, callable]],
                 scales: Sequence[float] = (32, 64, 128, 256, 512),
                 num_crops: int = 2,
                 index_file: Optional[str] = None,
                 max_refetch: int = 100,
                 lazy_init: bool = False,
                 backend_args: Optional[dict] = None,
                 include_crowd: bool = True) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        # Built in mmdet's scope (where mmibs registers) whatever the caller's default scope, so
        # that wrappers such as mmcv's RandomResize also build mmdet's box-aware Resize.
        with DefaultScope.overwrite_default_scope('mmdet'):
            self.pipeline = Compose(
                [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline])
        if len(scales) == 0 or min(scales) <= 0:
            raise ValueError(f'CropSamplingDataset: scales must be positive, got {scales}')
        if num_crops < 1:
            raise ValueError(f'CropSamplingDataset: num_crops must be >= 1, got {num_crops}')
        self.scales = tuple(scales)
        self.num_crops = num_crops
        self.index_file = index_file
        self.max_refetch = max_refetch
        self.backend_args = backend_args
        self.include_crowd = include_crowd
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's metainfo."""
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Load the wrapped dataset and build the category -> images index."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        if self.index_file is None:
            self.images_per_label = self._index_from_dataset()
        else:
            self.images_per_label = self._index_from_file(self.index_file)
        self.labels = sorted(label for label, idx in self.images_per_label.items() if idx)
        if not self.labels:
            raise ValueError('CropSamplingDataset: no category has a non-crowd segment')
        self._fully_initialized = True

    @staticmethod
    def _non_crowd(info: dict, label: int) -> List[dict]:
        """Non-crowd segments of ``label`` in a data info (what the image index counts)."""
        return [s for s in info['segments_info'] if s['category'] == label and not s['iscrowd']]

    def _drawable(self, info: dict, label: int) -> List[dict]:
        """The segments of ``label`` that a crop can be centred on."""
        if self.include_crowd:
            return [s for s in info['segments_info'] if s['category'] == label]
        return self._non_crowd(info, label)

    def _index_from_dataset(self) -> Dict[int, List[int]]:
        """label -> indices of images holding a non-crowd segment of it."""
        index: Dict[int, List[int]] = {}
        for i in range(len(self.dataset)):
            info = self.dataset.get_data_info(i)
            self._check_info(info)
            for label in sorted({s['category'] for s in info['segments_info']}):
                if self._non_crowd(info, label):
                    index.setdefault(label, []).append(i)
        return index

    def _check_info(self, info: dict) -> None:
        segments = info.get('segments_info')
        if segments is None or (segments
                                and not {'category', 'iscrowd', 'bbox'} <= set(segments[0])):
            raise KeyError(f'CropSamplingDataset: {type(self.dataset).__name__} data infos need '
                           '"segments_info" with "category", "iscrowd" and "bbox" (use an mmibs '
                           'panoptic dataset, e.g. CityscapesPanopticDataset)')

    def _index_from_file(self, path: str) -> Dict[int, List[int]]:
        """Read a converter's index; categories by name, images by id."""
        index = load_json(path, backend_args=self.backend_args)
        if not {'categories', 'imgs_per_cat'} <= set(index):
            raise ValueError(f'{path}: not a crop sampling index (needs "categories" and '
                             '"imgs_per_cat")')
        label_of = {normalize_name(n): i for i, n in enumerate(self.dataset.metainfo['classes'])}
        position = {}
        for i in range(len(self.dataset)):
            info = self.dataset.get_data_info(i)
            self._check_info(info)
            position[info['img_id']] = i
        out: Dict[int, List[int]] = {}
        for cat in index['categories']:
            label = label_of.get(normalize_name(cat['name']))
            if label is None:
                raise ValueError(f'{path}: category {cat["name"]!r} is not a class of '
                                 f'{type(self.dataset).__name__}')
            for img_id in index['imgs_per_cat'][str(cat['id'])]:
                if img_id not in position:
                    raise ValueError(f'{path}: image {img_id!r} is not in the wrapped dataset '
                                     '(index built from another annotation file?)')
                out.setdefault(label, []).append(position[img_id])
        return out

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self.labels)

    def _draw_crop_info(self, label: int, scale: float) -> dict:
        """Draw an image holding ``label`` and one of its segments (np.random).

        Each crop's image is drawn independently, as released: both crops of an item can come
        from one image. The chosen index is in the result's ``crop_sampling['data_idx']``.
        """
        candidates = self.images_per_label[label]
        data_idx = candidates[np.random.randint(len(candidates))]
        info = self.dataset.get_data_info(data_idx)
        if not self._non_crowd(info, label):
            raise ValueError(f'CropSamplingDataset: image {info["img_id"]!r} is indexed under '
                             f'label {label} but has no non-crowd segment of it '
                             f'(stale index file {self.index_file}?)')
        segments = self._drawable(info, label)
        segment = segments[np.random.randint(len(segments))]
        things_before = [s['is_thing'] for s in info['segments_info']]
        position = info['segments_info'].index(segment)
        num_things = len(self.dataset.metainfo.get('thing_classes', ()))
        info['crop_sampling'] = dict(
            label=label,
            data_idx=data_idx,
            category=self.dataset.metainfo['classes'][label],
            scale=scale,
            is_thing=label < num_things,  # crowd regions of a thing class are things too
            iscrowd=bool(segment['iscrowd']),
            segment_id=segment['id'],
            bbox=list(segment['bbox']),
            instance_index=sum(things_before[:position]) if segment['is_thing'] else -1)
        return info

    def __getitem__(self, idx: int) -> List[dict]:
        """Two (``num_crops``) packed crops of category ``self.labels[idx]``."""
        if not self._fully_initialized:
            self.full_init()
        label = self.labels[idx]
        for _ in range(self.max_refetch + 1):
            scale = self.scales[np.random.randint(len(self.scales))]  # shared by the crops
            samples = []
            for _ in range(self.num_crops):
                sample = self.pipeline(self._draw_crop_info(label, scale))
                if sample is None:
                    break
                samples.append(sample)
            if len(samples) == self.num_crops:
                return samples
        raise RuntimeError(f'CropSamplingDataset: the pipeline returned None {self.max_refetch} '
                           f'times for label {label}')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(dataset={type(self.dataset).__name__}, '
                f'num_categories={len(self.labels) if self._fully_initialized else "?"}, '
                f'scales={self.scales}, num_crops={self.num_crops}, '
                f'index_file={self.index_file}, include_crowd={self.include_crowd})')


@FUNCTIONS.register_module()
def pair_collate(data_batch: Sequence) -> dict:
    """Flatten items of ``num_crops`` samples, then mmengine's ``pseudo_collate``.

    Item k's crops land at batch indices ``num_crops * k`` ... (2k, 2k + 1 for pairs), the layout
    IBS's ``pair`` partner mode (i XOR 1) expects. Items that are single samples (a plain dataset)
    pass through unchanged, so the same config works with crop sampling switched off.

    Args:
        data_batch (Sequence): Items from the dataset: lists of packed samples, or samples.

    Returns:
        dict: ``pseudo_collate`` of the flat list (``inputs`` and ``data_samples`` lists).
    """
    sizes = {len(item) for item in data_batch if isinstance(item, (list, tuple))}
    if len(sizes) > 1 or (sizes and not all(isinstance(i, (list, tuple)) for i in data_batch)):
        raise ValueError('pair_collate: every item must hold the same number of crops, got '
                         f'{[len(i) if isinstance(i, (list, tuple)) else 1 for i in data_batch]}')
    flat = [s for item in data_batch for s in (item if isinstance(item, (list, tuple)) else [item])]
    return pseudo_collate(flat)
