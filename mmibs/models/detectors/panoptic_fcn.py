# Copyright (c) mmibs contributors. All rights reserved.
"""Panoptic FCN detector: backbone -> neck -> panoptic head -> fusion head.

Li et al., "Fully Convolutional Networks for Panoptic Segmentation", CVPR 2021
(https://arxiv.org/abs/2012.00720); with IBS (de Geus & Dubbelman, WACV 2023) through the head's
``loss_ibs``. See ``docs/method.md``.
"""
from typing import Dict, List, Tuple

from mmdet.models.detectors.base import BaseDetector
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmibs.registry import MODELS


@MODELS.register_module()
class PanopticFCN(BaseDetector):
    """Panoptic FCN.

    The head gets ``train_cfg`` and ``test_cfg``, the fusion head ``test_cfg`` (as mmdet's
    ``MaskFormer`` does). Predictions follow mmdet's panoptic contract: ``pred_panoptic_seg``
    (:obj:`PixelData`, ``sem_seg`` (1, H, W) = label + instance_id * INSTANCE_OFFSET, VOID =
    num_classes) and, with ``test_cfg.instance_on``, ``pred_instances``.

    Args:
        backbone (dict): Backbone config (ResNet-50).
        neck (dict): Neck config (FPN P2-P7).
        panoptic_head (dict): Config of :class:`PanopticFCNHead`.
        panoptic_fusion_head (dict): Config of :class:`PanopticFCNFusionHead`.
        train_cfg (dict, optional): Training config of the head. Defaults to None.
        test_cfg (dict, optional): Testing config of the heads. Defaults to None.
        data_preprocessor (dict, optional): Config of :class:`DetDataPreprocessor`.
            Defaults to None.
        init_cfg (dict or list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 panoptic_head: ConfigType,
                 panoptic_fusion_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        panoptic_head = dict(panoptic_head)
        panoptic_head.update(train_cfg=train_cfg, test_cfg=test_cfg)
        self.panoptic_head = MODELS.build(panoptic_head)
        panoptic_fusion_head = dict(panoptic_fusion_head)
        panoptic_fusion_head.update(test_cfg=test_cfg)
        self.panoptic_fusion_head = MODELS.build(panoptic_fusion_head)
        head, fusion = self.panoptic_head, self.panoptic_fusion_head
        if (head.num_things_classes, head.num_stuff_classes) != (fusion.num_things_classes,
                                                                 fusion.num_stuff_classes):
            raise ValueError('PanopticFCN: panoptic_head and panoptic_fusion_head disagree on '
                             f'(num_things_classes, num_stuff_classes): '
                             f'{(head.num_things_classes, head.num_stuff_classes)} vs '
                             f'{(fusion.num_things_classes, fusion.num_stuff_classes)}')
        self.num_things_classes = head.num_things_classes
        self.num_stuff_classes = head.num_stuff_classes
        self.num_classes = head.num_classes
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Backbone and neck.

        Args:
            batch_inputs (Tensor): Shape (B, 3, H, W).

        Returns:
            tuple[Tensor]: Neck outputs P2..P7, shapes (B, C, H/s, W/s).
        """
        return self.neck(self.backbone(batch_inputs))

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of a batch.

        Args:
            batch_inputs (Tensor): Shape (B, 3, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): With ``gt_instances`` and
                ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: The loss components.
        """
        return self.panoptic_head.loss(self.extract_feat(batch_inputs), batch_data_samples)

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic (and instance) predictions.

        Args:
            batch_inputs (Tensor): Shape (B, 3, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): With metainfo.
            rescale (bool): Results at the original image size. Defaults to True.

        Returns:
            list[:obj:`DetDataSample`]: The samples with ``pred_panoptic_seg`` and
            ``pred_instances``.
        """
        candidates = self.panoptic_head.predict(self.extract_feat(batch_inputs), batch_data_samples)
        results = self.panoptic_fusion_head.predict(candidates, batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def add_pred_to_datasample(self, data_samples: SampleList,
                               results_list: List[dict]) -> SampleList:
        """Store ``pan_results`` as ``pred_panoptic_seg`` and ``ins_results`` as
        ``pred_instances``, as mmdet's ``MaskFormer`` does."""
        for data_sample, result in zip(data_samples, results_list):
            if 'pan_results' in result:
                data_sample.pred_panoptic_seg = result['pan_results']
            if 'ins_results' in result:
                data_sample.pred_instances = result['ins_results']
        return data_samples

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None) -> tuple:
        """Network forward without post-processing.

        Returns:
            tuple: ``mask_feat`` and the per-level center, region and kernel maps.
        """
        return self.panoptic_head.forward(self.extract_feat(batch_inputs))
