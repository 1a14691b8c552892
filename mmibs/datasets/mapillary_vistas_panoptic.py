# Copyright (c) mmibs contributors. All rights reserved.
"""Mapillary Vistas panoptic (v1.2: 65 classes, 37 things, 28 stuff; v2.0 as an option) and the
instance-segmentation variant.

Vistas ships COCO-panoptic annotations; :mod:`mmibs.datasets.converters.mapillary_vistas_panoptic`
(``tools/dataset_converters/mapillary_vistas_panoptic.py``) checks them and writes a things-first
copy of the json (and, on request, a COCO instance json with RLE masks)::

    data/mapillary_vistas/training/images/<key>.jpg
    data/mapillary_vistas/training/v1.2/panoptic/<key>.png
    data/mapillary_vistas/annotations/mapillary_vistas_v1.2_panoptic_train.json
    data/mapillary_vistas/annotations/mapillary_vistas_v1.2_instances_train.json   (optional)

The v1.2 classes (names, colours, thing flags) are those of the dataset's ``config_v1.2.json``, as
listed by Mask2Former's ``register_mapillary_vistas_panoptic.py``. For v2.0 no verified thing list
was available when this was written, so the classes are read from the json itself (things first,
then stuff, each in id order).
"""
import copy
from typing import List

from mmdet.datasets import CocoDataset
from mmengine.fileio import get_local_path

from mmibs.registry import DATASETS
from .base_panoptic import ThingsFirstPanopticDataset, normalize_name
from .utils import things_first

# (id, name, supercategory, isthing, colour) of Vistas v1.2, in json (id) order.
_V12 = [
    (1, 'Bird', 'animal--bird', 1, (165, 42, 42)),
    (2, 'Ground Animal', 'animal--ground-animal', 1, (0, 192, 0)),
    (3, 'Curb', 'construction--barrier--curb', 0, (196, 196, 196)),
    (4, 'Fence', 'construction--barrier--fence', 0, (190, 153, 153)),
    (5, 'Guard Rail', 'construction--barrier--guard-rail', 0, (180, 165, 180)),
    (6, 'Barrier', 'construction--barrier--other-barrier', 0, (90, 120, 150)),
    (7, 'Wall', 'construction--barrier--wall', 0, (102, 102, 156)),
    (8, 'Bike Lane', 'construction--flat--bike-lane', 0, (128, 64, 255)),
    (9, 'Crosswalk - Plain', 'construction--flat--crosswalk-plain', 1, (140, 140, 200)),
    (10, 'Curb Cut', 'construction--flat--curb-cut', 0, (170, 170, 170)),
    (11, 'Parking', 'construction--flat--parking', 0, (250, 170, 160)),
    (12, 'Pedestrian Area', 'construction--flat--pedestrian-area', 0, (96, 96, 96)),
    (13, 'Rail Track', 'construction--flat--rail-track', 0, (230, 150, 140)),
    (14, 'Road', 'construction--flat--road', 0, (128, 64, 128)),
    (15, 'Service Lane', 'construction--flat--service-lane', 0, (110, 110, 110)),
    (16, 'Sidewalk', 'construction--flat--sidewalk', 0, (244, 35, 232)),
    (17, 'Bridge', 'construction--structure--bridge', 0, (150, 100, 100)),
    (18, 'Building', 'construction--structure--building', 0, (70, 70, 70)),
    (19, 'Tunnel', 'construction--structure--tunnel', 0, (150, 120, 90)),
    (20, 'Person', 'human--person', 1, (220, 20, 60)),
    (21, 'Bicyclist', 'human--rider--bicyclist', 1, (255, 0, 0)),
    (22, 'Motorcyclist', 'human--rider--motorcyclist', 1, (255, 0, 100)),
    (23, 'Other Rider', 'human--rider--other-rider', 1, (255, 0, 200)),
    (24, 'Lane Marking - Crosswalk', 'marking--crosswalk-zebra', 1, (200, 128, 128)),
    (25, 'Lane Marking - General', 'marking--general', 0, (255, 255, 255)),
    (26, 'Mountain', 'nature--mountain', 0, (64, 170, 64)),
    (27, 'Sand', 'nature--sand', 0, (230, 160, 50)),
    (28, 'Sky', 'nature--sky', 0, (70, 130, 180)),
    (29, 'Snow', 'nature--snow', 0, (190, 255, 255)),
    (30, 'Terrain', 'nature--terrain', 0, (152, 251, 152)),
    (31, 'Vegetation', 'nature--vegetation', 0, (107, 142, 35)),
    (32, 'Water', 'nature--water', 0, (0, 170, 30)),
    (33, 'Banner', 'object--banner', 1, (255, 255, 128)),
    (34, 'Bench', 'object--bench', 1, (250, 0, 30)),
    (35, 'Bike Rack', 'object--bike-rack', 1, (100, 140, 180)),
    (36, 'Billboard', 'object--billboard', 1, (220, 220, 220)),
    (37, 'Catch Basin', 'object--catch-basin', 1, (220, 128, 128)),
    (38, 'CCTV Camera', 'object--cctv-camera', 1, (222, 40, 40)),
    (39, 'Fire Hydrant', 'object--fire-hydrant', 1, (100, 170, 30)),
    (40, 'Junction Box', 'object--junction-box', 1, (40, 40, 40)),
    (41, 'Mailbox', 'object--mailbox', 1, (33, 33, 33)),
    (42, 'Manhole', 'object--manhole', 1, (100, 128, 160)),
    (43, 'Phone Booth', 'object--phone-booth', 1, (142, 0, 0)),
    (44, 'Pothole', 'object--pothole', 0, (70, 100, 150)),
    (45, 'Street Light', 'object--street-light', 1, (210, 170, 100)),
    (46, 'Pole', 'object--support--pole', 1, (153, 153, 153)),
    (47, 'Traffic Sign Frame', 'object--support--traffic-sign-frame', 1, (128, 128, 128)),
    (48, 'Utility Pole', 'object--support--utility-pole', 1, (0, 0, 80)),
    (49, 'Traffic Light', 'object--traffic-light', 1, (250, 170, 30)),
    (50, 'Traffic Sign (Back)', 'object--traffic-sign--back', 1, (192, 192, 192)),
    (51, 'Traffic Sign (Front)', 'object--traffic-sign--front', 1, (220, 220, 0)),
    (52, 'Trash Can', 'object--trash-can', 1, (140, 140, 20)),
    (53, 'Bicycle', 'object--vehicle--bicycle', 1, (119, 11, 32)),
    (54, 'Boat', 'object--vehicle--boat', 1, (150, 0, 255)),
    (55, 'Bus', 'object--vehicle--bus', 1, (0, 60, 100)),
    (56, 'Car', 'object--vehicle--car', 1, (0, 0, 142)),
    (57, 'Caravan', 'object--vehicle--caravan', 1, (0, 0, 90)),
    (58, 'Motorcycle', 'object--vehicle--motorcycle', 1, (0, 0, 230)),
    (59, 'On Rails', 'object--vehicle--on-rails', 0, (0, 80, 100)),
    (60, 'Other Vehicle', 'object--vehicle--other-vehicle', 1, (128, 64, 64)),
    (61, 'Trailer', 'object--vehicle--trailer', 1, (0, 0, 110)),
    (62, 'Truck', 'object--vehicle--truck', 1, (0, 0, 70)),
    (63, 'Wheeled Slow', 'object--vehicle--wheeled-slow', 1, (0, 0, 192)),
    (64, 'Car Mount', 'void--car-mount', 0, (32, 32, 32)),
    (65, 'Ego Vehicle', 'void--ego-vehicle', 0, (120, 10, 10)),
]
#: Vistas v1.2 panoptic categories as its json lists them (id order, things and stuff interleaved).
VISTAS_V12_CATEGORIES = [
    dict(id=i, name=n, supercategory=s, isthing=t, color=list(c)) for i, n, s, t, c in _V12
]
#: Number of categories of each version's panoptic json. v2.0: 124 labels in config_v2.0.json
#: including 'Unlabeled' (not verified on the real json: 123 or 124 are accepted).
VISTAS_NUM_CATEGORIES = {'v1.2': (65, ), 'v2.0': (123, 124)}


def vistas_metainfo(categories: List[dict]) -> dict:
    """Things-first ``metainfo`` (classes, thing/stuff classes, palette) from json categories."""
    ordered = things_first(categories)
    return dict(
        classes=tuple(c['name'] for c in ordered),
        thing_classes=tuple(c['name'] for c in ordered if c['isthing']),
        stuff_classes=tuple(c['name'] for c in ordered if not c['isthing']),
        palette=[tuple(c['color']) for c in ordered])


def check_vistas_version(categories: List[dict], version: str, source: str) -> None:
    """Raise a clear error when a json's categories do not belong to Vistas ``version``.

    Args:
        categories (list[dict]): The json's ``categories``.
        version (str): ``'v1.2'`` or ``'v2.0'``.
        source (str): The json path, for the message.
    """
    if version not in VISTAS_NUM_CATEGORIES:
        raise ValueError(f'Mapillary Vistas version must be one of '
                         f'{sorted(VISTAS_NUM_CATEGORIES)}, got {version!r}')
    expected = VISTAS_NUM_CATEGORIES[version]
    if len(categories) not in expected:
        other = [v for v, n in VISTAS_NUM_CATEGORIES.items() if len(categories) in n]
        hint = f'; it looks like Vistas {other[0]}, pass version={other[0]!r}' if other else ''
        raise ValueError(f'{source}: {len(categories)} categories, but Mapillary Vistas {version} '
                         f'panoptic has {" or ".join(map(str, expected))}{hint}')
    if version == 'v1.2':
        by_id = {c['id']: c for c in categories}
        wrong = [
            (ref['id'], ref['name']) for ref in VISTAS_V12_CATEGORIES
            if ref['id'] not in by_id or normalize_name(by_id[ref['id']]['name']) != normalize_name(
                ref['name']) or bool(by_id[ref['id']].get('isthing')) != bool(ref['isthing'])
        ]
        if wrong:
            raise ValueError(f'{source}: categories (id, name) {wrong[:5]} do not match Mapillary '
                             'Vistas v1.2 (names or thing flags differ)')


@DATASETS.register_module()
class MapillaryVistasPanopticDataset(ThingsFirstPanopticDataset):
    """Mapillary Vistas panoptic dataset (v1.2 labels: 0-36 things, 37-64 stuff).

    Args:
        version (str): ``'v1.2'`` (65 classes) or ``'v2.0'`` (classes read from the json).
            A json of the other version raises a ``ValueError``. Defaults to ``'v1.2'``.
        *args: See :class:`ThingsFirstPanopticDataset`.
        **kwargs: See :class:`ThingsFirstPanopticDataset`.
    """

    METAINFO = vistas_metainfo(VISTAS_V12_CATEGORIES)

    def __init__(self, *args, version: str = 'v1.2', **kwargs) -> None:
        if version not in VISTAS_NUM_CATEGORIES:
            raise ValueError(f'{type(self).__name__}: version must be one of '
                             f'{sorted(VISTAS_NUM_CATEGORIES)}, got {version!r}')
        self.version = version
        self._user_metainfo = kwargs.get('metainfo') is not None
        super().__init__(*args, **kwargs)

    def _update_metainfo_from_json(self, categories: List[dict]) -> None:
        check_vistas_version(categories, self.version, self.ann_file)
        if self.version != 'v1.2' and not self._user_metainfo:
            self._metainfo.update(copy.deepcopy(vistas_metainfo(categories)))


@DATASETS.register_module()
class MapillaryVistasInstanceDataset(CocoDataset):
    """Mapillary Vistas v1.2 instance segmentation (the 37 thing classes), COCO json with RLE.

    Labels follow ``metainfo['classes']`` by name, whatever the json's category order.
    """

    METAINFO = dict(
        classes=vistas_metainfo(VISTAS_V12_CATEGORIES)['thing_classes'],
        palette=[tuple(c['color']) for c in things_first(VISTAS_V12_CATEGORIES) if c['isthing']])

    def load_data_list(self) -> List[dict]:
        """As :meth:`CocoDataset.load_data_list`, with category ids taken in class order."""
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            self.coco = self.COCOAPI(local_path)
        by_name = {normalize_name(c['name']): c['id'] for c in self.coco.dataset['categories']}
        missing = [n for n in self.metainfo['classes'] if normalize_name(n) not in by_name]
        if missing:
            raise ValueError(f'{self.ann_file}: no categories named {missing}')
        self.cat_ids = [by_name[normalize_name(n)] for n in self.metainfo['classes']]
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self.cat_img_map = copy.deepcopy(self.coco.cat_img_map)
        data_list = []
        for img_id in self.coco.get_img_ids():
            raw_img_info = dict(self.coco.load_imgs([img_id])[0], img_id=img_id)
            raw_ann_info = self.coco.load_anns(self.coco.get_ann_ids(img_ids=[img_id]))
            data_list.append(
                self.parse_data_info(dict(raw_ann_info=raw_ann_info, raw_img_info=raw_img_info)))
        del self.coco
        return data_list
