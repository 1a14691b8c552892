# Copyright (c) mmibs contributors. All rights reserved.
"""A COCO-panoptic dataset whose labels follow ``metainfo['classes']``, things first.

Why not mmdet's ``CocoPanopticDataset`` as is (``docs/data.md``):

1. it maps category ids to labels in *json* order (pycocotools ``get_cat_ids`` ignores the order
   of ``classes``), while mmdet's models take labels ``[0, num_things)`` as things; Cityscapes and
   Mapillary Vistas jsons list stuff first or interleaved;
2. it derives the ground-truth PNG name from the *image* name, while Cityscapes names them
   ``<id>_gtFine_panoptic.png``; here the PNG is ``annotations[].file_name``;
3. its ``load_anns`` gathers segments by (non-unique) segment id over the whole json, which is
   quadratic on Cityscapes where every image has segment 7 (road); here segments are read per image.

Bad input fails early with the file named: a json without images (or none left after
``filter_cfg``), and, for local files, an image or ground-truth PNG that the json lists but that
does not exist, are errors at dataset build, before any training. The ids of *all* json segments
of an image are kept (``json_segment_ids``) so that the PNG can be checked against them when it is
loaded (:class:`mmibs.datasets.transforms.LoadCheckedPanopticAnnotations`).
"""
import os.path as osp
import re
from typing import Dict, List, Optional

from mmdet.datasets import CocoPanopticDataset

from mmibs.registry import DATASETS
from .utils import load_json


def normalize_name(name: str) -> str:
    """Compare class names case-, space- and underscore-insensitively ('Traffic_Light')."""
    return re.sub(r'[\s_]+', ' ', name).strip().lower()


@DATASETS.register_module()
class ThingsFirstPanopticDataset(CocoPanopticDataset):
    """COCO-panoptic json + PNG dataset with labels in ``metainfo`` order (things first).

    Labels are assigned by category *name*: label ``i`` is ``metainfo['classes'][i]`` whatever the
    order of the json's categories, and ``classes`` must list ``thing_classes`` first. The json's
    ``isthing`` flags must agree with ``thing_classes``. Segments of json categories that are not
    in ``classes`` are left out (they become void, 255, in the semantic map).

    Data info per image (mmdet's ``CocoPanopticDataset`` keys, plus a few): ``img_path``,
    ``img_id`` (kept as in the json, e.g. a Cityscapes string id), ``seg_map_path``
    (``data_prefix['seg']`` + ``annotations[].file_name``), ``height``, ``width``,
    ``instances`` (non-crowd things: ``bbox`` xyxy, ``bbox_label``, ``ignore_flag`` 0) and
    ``segments_info`` (every segment: ``id``, ``category`` (label), ``is_thing`` (False for crowd,
    as mmdet), and the added ``iscrowd``, ``area`` and ``bbox`` xyxy, used by crop sampling).

    Args:
        *args: See :class:`mmdet.datasets.CocoPanopticDataset`.
        **kwargs: See :class:`mmdet.datasets.CocoPanopticDataset`.
    """

    def load_data_list(self) -> List[dict]:
        """Read the json and parse every image (see the class docstring).

        Returns:
            List[dict]: One data info per image, in json ``images`` order.
        """
        dataset = load_json(self.ann_file, backend_args=self.backend_args)
        for key in ('images', 'annotations', 'categories'):
            if not isinstance(dataset, dict) or key not in dataset:
                raise ValueError(f'{self.ann_file}: a COCO-panoptic json needs "images", '
                                 f'"annotations" and "categories"; "{key}" is missing')
        self._update_metainfo_from_json(dataset['categories'])
        self.cat_ids = self._cat_ids_in_class_order(dataset['categories'])
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}

        anns_by_img = {ann['image_id']: ann for ann in dataset['annotations']}
        data_list = []
        for img_info in dataset['images']:
            ann = anns_by_img.get(img_info['id'])
            if ann is None:
                raise ValueError(f'{self.ann_file}: image {img_info["id"]!r} '
                                 f'({img_info.get("file_name")}) has no entry in "annotations"')
            raw_img_info = dict(img_info, img_id=img_info['id'], segm_file=ann['file_name'])
            data_list.append(
                self.parse_data_info(
                    dict(raw_img_info=raw_img_info, raw_ann_info=ann['segments_info'])))
        self._check_files_exist(data_list)
        return data_list

    def _is_local(self, path: Optional[str]) -> bool:
        """Whether ``path`` is a local file (existence checks are skipped for other backends)."""
        return path is not None and not self.backend_args and '://' not in path

    def _check_files_exist(self, data_list: List[dict]) -> None:
        """Raise naming the json and the first missing files when local images or PNGs are absent.

        Without this, a missing file surfaces as a bare ``FileNotFoundError`` deep in the data
        pipeline, possibly hours into training; a ``stat`` per file costs well under a second
        even on Mapillary Vistas (20k images).
        """
        missing = []
        for info in data_list:
            for key in ('img_path', 'seg_map_path'):
                path = info.get(key)
                if self._is_local(path) and not osp.isfile(path):
                    missing.append(f'{key}={path} (image id {info["img_id"]!r})')
        if missing:
            raise FileNotFoundError(
                f'{self.ann_file}: {len(missing)} file(s) listed in the json do not exist, e.g. '
                f'{missing[:3]}; check data_root / data_prefix or the dataset conversion')

    def filter_data(self) -> List[dict]:
        """mmdet's filtering, then an error when no image is left (an empty json or a
        ``filter_cfg`` that drops everything): training would otherwise wait forever on an
        infinite sampler over zero images.

        Returns:
            List[dict]: The kept data infos.
        """
        data_list = super().filter_data()
        if not data_list:
            reason = (f'no image is left after filter_cfg={self.filter_cfg}'
                      if self.data_list and not self.test_mode else 'the json lists no image')
            raise ValueError(f'{type(self).__name__}: empty dataset: {reason} in '
                             f'ann_file={self.ann_file}')
        return data_list

    def _update_metainfo_from_json(self, categories: List[dict]) -> None:
        """Hook for subclasses whose class list comes from the json (Vistas v2.0)."""

    def _cat_ids_in_class_order(self, categories: List[dict]) -> List[int]:
        """Json category ids in ``metainfo['classes']`` order, checked against the json."""
        classes = list(self.metainfo['classes'])
        thing_classes = list(self.metainfo.get('thing_classes', ()))
        if classes[:len(thing_classes)] != thing_classes:
            raise ValueError(f'{type(self).__name__}: metainfo "classes" must start with the '
                             f'"thing_classes" {thing_classes}, got {classes}')
        by_name: Dict[str, dict] = {}
        for cat in categories:
            by_name.setdefault(normalize_name(cat['name']), cat)
        cat_ids = []
        for label, name in enumerate(classes):
            cat = by_name.get(normalize_name(name))
            if cat is None:
                raise ValueError(
                    f'{self.ann_file}: no category named {name!r} (class {label} of '
                    f'{type(self).__name__}); the json has {[c["name"] for c in categories]}')
            is_thing = label < len(thing_classes)
            if bool(cat.get('isthing', 0)) != is_thing:
                raise ValueError(f'{self.ann_file}: category {name!r} (id {cat["id"]}) has '
                                 f'isthing={cat.get("isthing")}, but {type(self).__name__} '
                                 f'lists it as a {"thing" if is_thing else "stuff"} class')
            cat_ids.append(cat['id'])
        return cat_ids

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """Parse one image's json entries.

        Args:
            raw_data_info (dict): ``raw_img_info`` (a json image plus ``img_id`` and
                ``segm_file``) and ``raw_ann_info`` (its ``segments_info`` list).

        Returns:
            dict: The data info described in the class docstring.
        """
        img_info = raw_data_info['raw_img_info']
        num_things = len(self.metainfo.get('thing_classes', ()))
        seg_prefix = self.data_prefix.get('seg', None)
        data_info = dict(
            img_path=osp.join(self.data_prefix['img'], img_info['file_name']),
            img_id=img_info['img_id'],
            seg_map_path=osp.join(seg_prefix, img_info['segm_file']) if seg_prefix else None,
            height=img_info['height'],
            width=img_info['width'])
        if self.return_classes:
            data_info.update(
                text=self.metainfo['thing_classes'],
                stuff_text=self.metainfo['stuff_classes'],
                custom_entities=True)
        instances, segments_info = [], []
        # every json segment, also those dropped below, for the PNG check at load time
        data_info['json_segment_ids'] = [segment['id'] for segment in raw_data_info['raw_ann_info']]
        for segment in raw_data_info['raw_ann_info']:
            x, y, w, h = segment['bbox']
            if segment['area'] <= 0 or w < 1 or h < 1:
                continue
            label = self.cat2label.get(segment['category_id'])
            if label is None:  # a json category outside `classes`: void
                continue
            bbox = [x, y, x + w, y + h]
            is_crowd = bool(segment.get('iscrowd', 0)) and label < num_things
            # As mmdet: a crowd region is a segment of its class in the semantic map but no
            # instance (no mask, no box), so it is neither a target nor void for a mask head.
            is_thing = label < num_things and not is_crowd
            segments_info.append(
                dict(
                    id=segment['id'],
                    category=label,
                    is_thing=is_thing,
                    iscrowd=int(is_crowd),
                    area=segment['area'],
                    bbox=bbox))
            if is_thing:
                instances.append(dict(bbox=bbox, bbox_label=label, ignore_flag=0))
        data_info['instances'] = instances
        data_info['segments_info'] = segments_info
        return data_info
