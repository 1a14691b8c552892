# Copyright (c) mmibs contributors. All rights reserved.
"""SOLOv2 head with Intra-Batch Supervision (``docs/method.md``, IBS in SOLOv2).

SOLOv2 predicts one dynamic 1x1 kernel per grid cell and takes an instance's mask logits as the
product of its kernel with the unified mask features of the image: the embedding x feature-map form
that IBS applies to. Shape shorthand: B images, L levels, G_l x G_l grid cells of level l, E kernel
channels (the mask-feature channels), H x W mask-feature size (stride 4), N_i positive cells of
image i.
"""
from typing import List, Optional, Tuple

import torch
from mmdet.models.dense_heads import SOLOV2Head
from mmdet.utils import InstanceList, OptConfigType
from mmengine.structures import InstanceData
from torch import Tensor

from mmibs.registry import MODELS


@MODELS.register_module()
class SOLOV2IBSHead(SOLOV2Head):
    """SOLOv2 head plus the IBS loss.

    See `Intra-Batch Supervision for Panoptic Segmentation on High-Resolution Images
    <https://arxiv.org/abs/2304.08222>`_. In training, the dynamic kernels that mmdet's mask loss
    uses, those of the positive grid cells of each image (the thing instances), are applied to the
    unified mask features of a partner image of the batch and the resulting masks are supervised
    towards empty (:class:`~mmibs.models.losses.IBSLoss`, sigmoid focal loss against 0). Inference
    is exactly mmdet's.

    How it hooks into mmdet without copying its loss code:

    - :meth:`_get_targets_single` is a thin wrapper that records, during :meth:`loss_by_feat`
      only, the positive cells mmdet's target assignment returns for each image (mmdet calls it
      once per image, in batch order);
    - :meth:`loss_by_feat` returns mmdet's ``loss_mask`` and ``loss_cls`` unchanged and then adds
      ``loss_ibs``: IBS runs after the standard losses, so it does not change their random draws.

    The kernels are taken at the cells of mmdet's ``pos_indexes``, one per entry, as the mask loss
    takes them; the normaliser is mmdet's ``num_pos`` (the positive cells of this process, not
    all-reduced), the normaliser of ``loss_mask``.

    Args:
        *args: Positional arguments of :class:`mmdet.models.dense_heads.SOLOV2Head`.
        loss_ibs (:obj:`ConfigDict` or dict, optional): Config of the IBS loss, e.g.
            ``dict(type='IBSLoss', partner='random', num_points=None, loss_weight=3.0)``.
            ``partner='pair'`` needs an even batch of crop-sampled pairs per process. Defaults
            to None: no IBS, the head is mmdet's ``SOLOV2Head``.
        **kwargs: Keyword arguments of :class:`mmdet.models.dense_heads.SOLOV2Head`.
    """

    def __init__(self, *args, loss_ibs: OptConfigType = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if loss_ibs is not None and self.dynamic_conv_size != 1:
            raise ValueError(
                f'{type(self).__name__}: IBS needs dynamic_conv_size=1 (a kernel is then an '
                f'embedding of the mask features), got dynamic_conv_size={self.dynamic_conv_size}')
        self.loss_ibs = MODELS.build(loss_ibs) if loss_ibs is not None else None
        self._ibs_targets: Optional[List[tuple]] = None

    def _get_targets_single(self,
                            gt_instances: InstanceData,
                            featmap_sizes: Optional[list] = None) -> tuple:
        """mmdet's ``_get_targets_single``, also recording the positive cells for IBS.

        Args and returns are those of
        :meth:`mmdet.models.dense_heads.SOLOV2Head._get_targets_single`; the recorded
        ``(mlvl_pos_masks, mlvl_pos_indexes)`` are its third and fourth outputs.
        """
        targets = super()._get_targets_single(gt_instances, featmap_sizes=featmap_sizes)
        if self._ibs_targets is not None:
            self._ibs_targets.append((targets[2], targets[3]))
        return targets

    def loss_by_feat(self, mlvl_kernel_preds: List[Tensor], mlvl_cls_preds: List[Tensor],
                     mask_feats: Tensor, batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict], **kwargs) -> dict:
        """mmdet's losses, then the IBS loss of the positive kernels.

        Args:
            mlvl_kernel_preds (list[Tensor]): Dynamic kernels per level, each (B, E, G_l, G_l).
            mlvl_cls_preds (list[Tensor]): Class logits per level, each (B, K, G_l, G_l).
            mask_feats (Tensor): Unified mask features, shape (B, E, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): Ground truth with ``bboxes``,
                ``labels`` and ``masks``.
            batch_img_metas (list[dict]): Image meta information.

        Returns:
            dict[str, Tensor]: ``loss_mask``, ``loss_cls`` and, with IBS, ``loss_ibs``.
        """
        if self.loss_ibs is None:
            return super().loss_by_feat(mlvl_kernel_preds, mlvl_cls_preds, mask_feats,
                                        batch_gt_instances, batch_img_metas, **kwargs)
        self._ibs_targets = []
        try:
            losses = super().loss_by_feat(mlvl_kernel_preds, mlvl_cls_preds, mask_feats,
                                          batch_gt_instances, batch_img_metas, **kwargs)
            targets = self._ibs_targets
        finally:
            self._ibs_targets = None
        if len(targets) != len(batch_gt_instances):
            raise RuntimeError(f'{type(self).__name__}: expected one target assignment per image '
                               f'({len(batch_gt_instances)}), recorded {len(targets)}')
        embeddings, num_pos = self._positive_kernels(mlvl_kernel_preds, targets)
        losses['loss_ibs'] = self.loss_ibs(embeddings, mask_feats, avg_factor=num_pos)
        return losses

    @staticmethod
    def _positive_kernels(
            mlvl_kernel_preds: List[Tensor],
            targets: List[Tuple[List[Tensor], List[list]]]) -> Tuple[List[Tensor], int]:
        """The kernels of the positive cells of each image and mmdet's ``num_pos``.

        Args:
            mlvl_kernel_preds (list[Tensor]): Dynamic kernels per level, each (B, E, G_l, G_l).
            targets (list[tuple]): Per image, ``(mlvl_pos_masks, mlvl_pos_indexes)``: per level a
                bool (G_l**2, ) mask of the positive cells and the list of positive cell indices
                (one entry per (instance, cell) pair, as mmdet's mask targets).

        Returns:
            tuple[list[Tensor], int]: B tensors of shape (N_i, E), levels concatenated in order,
            and the number of positive cells over the batch (mmdet's normaliser of
            ``loss_mask``).
        """
        embeddings, num_pos = [], 0
        for img_id, (pos_masks, pos_indexes) in enumerate(targets):
            per_level = []
            for kernel_preds, indexes in zip(mlvl_kernel_preds, pos_indexes):
                # shape (E, G, G) -> (E, G*G) -> (E, n) -> (n, E)
                kernels = kernel_preds[img_id].flatten(1)
                index = torch.as_tensor(indexes, dtype=torch.long, device=kernels.device)
                per_level.append(kernels[:, index].t())
            embeddings.append(torch.cat(per_level))
            num_pos += sum(int(mask.sum()) for mask in pos_masks)
        return embeddings, num_pos
