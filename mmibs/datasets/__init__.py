# Copyright (c) mmibs contributors. All rights reserved.
from .transforms import *  # noqa: F401,F403
from .base_panoptic import ThingsFirstPanopticDataset
from .cityscapes_panoptic import CityscapesPanopticDataset
from .crop_sampling_dataset import CropSamplingDataset, pair_collate
from .mapillary_vistas_panoptic import (MapillaryVistasInstanceDataset,
                                        MapillaryVistasPanopticDataset)

__all__ = [
    'ThingsFirstPanopticDataset', 'CityscapesPanopticDataset', 'MapillaryVistasPanopticDataset',
    'MapillaryVistasInstanceDataset', 'CropSamplingDataset', 'pair_collate'
]
