# Copyright (c) mmibs contributors. All rights reserved.
"""Cityscapes panoptic segmentation (19 evaluated classes: 8 things, 11 stuff).

Reads what :mod:`mmibs.datasets.converters.cityscapes_panoptic` (``tools/dataset_converters/
cityscapes_panoptic.py``) writes from the raw ``leftImg8bit/`` and ``gtFine/`` folders::

    data/cityscapes/leftImg8bit/<split>/<city>/<id>_leftImg8bit.png
    data/cityscapes/annotations/cityscapes_panoptic_<split>.json
    data/cityscapes/annotations/cityscapes_panoptic_<split>/<id>_gtFine_panoptic.png

Category ids in the json are Cityscapes *labelIds* (7 road ... 33 bicycle), as the official
evaluator and the test server expect; image ids are the ``<city>_<seq>_<frame>`` strings.
"""
from mmibs.registry import DATASETS
from .base_panoptic import ThingsFirstPanopticDataset

#: Evaluated thing classes, in labelId order (24 person ... 33 bicycle).
CITYSCAPES_THING_CLASSES = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
                            'bicycle')
#: Evaluated stuff classes, in labelId order (7 road ... 23 sky).
CITYSCAPES_STUFF_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                            'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky')
#: labelIds of the classes above, things first (the json category ids).
CITYSCAPES_LABEL_IDS = (24, 25, 26, 27, 28, 31, 32, 33, 7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23)
#: Colours of ``cityscapesscripts.helpers.labels``, things first.
CITYSCAPES_PALETTE = [(220, 20, 60),
                      (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230),
                      (119, 11, 32), (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156),
                      (190, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0),
                      (107, 142, 35), (152, 251, 152), (70, 130, 180)]


@DATASETS.register_module()
class CityscapesPanopticDataset(ThingsFirstPanopticDataset):
    """Cityscapes panoptic dataset (labels: 0-7 things, 8-18 stuff).

    See :class:`ThingsFirstPanopticDataset` for the data info; typical arguments::

        CityscapesPanopticDataset(
            data_root='data/cityscapes/',
            ann_file='annotations/cityscapes_panoptic_train.json',
            data_prefix=dict(img='leftImg8bit/train/',
                             seg='annotations/cityscapes_panoptic_train/'))
    """

    METAINFO = dict(
        classes=CITYSCAPES_THING_CLASSES + CITYSCAPES_STUFF_CLASSES,
        thing_classes=CITYSCAPES_THING_CLASSES,
        stuff_classes=CITYSCAPES_STUFF_CLASSES,
        palette=CITYSCAPES_PALETTE)
