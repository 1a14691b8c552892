# Copyright (c) mmibs contributors. All rights reserved.
"""CondInst mask head with Intra-Batch Supervision (``docs/method.md``, IBS in CondInst).

CondInst predicts, at every positive location of its box head, the parameters of a small dynamic
mask head (three 1x1 convolutions) and applies it to the image's mask features concatenated with
coordinates relative to that location. IBS applies the dynamic heads of image i's positives to the
mask features of a partner image j, with image i's relative coordinates, and supervises the
resulting masks towards empty.

Shape shorthand: B images, C mask-feature channels, h x w mask-feature size (stride
``mask_feat_stride``), H x W mask-logit size (stride ``mask_out_stride``), P_i positives of image i
(mmdet's ``positive_infos``), N_i of them selected for the mask loss.
"""
from typing import List, Optional, Sequence

import torch
from mmdet.models.dense_heads import CondInstMaskHead
from mmdet.structures import SampleList
from mmdet.utils import InstanceList, OptConfigType, OptInstanceList
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmibs.registry import MODELS
from ..losses import focal_loss_to_zero, ibs_partners


@MODELS.register_module()
class CondInstIBSMaskHead(CondInstMaskHead):
    """CondInst mask head plus the IBS loss.

    See `Intra-Batch Supervision for Panoptic Segmentation on High-Resolution Images
    <https://arxiv.org/abs/2304.08222>`_. In training, the dynamic mask-head parameters of the
    positives that mmdet's mask loss uses (after its ``max_masks_to_train`` /
    ``topk_masks_per_img`` selection) are run through mmdet's own :meth:`forward_single` on the
    mask features of a partner image, with the positives' own points and strides (so the same
    relative coordinates as on their image), and every resulting mask logit is supervised towards
    0 with the sigmoid focal loss. Inference is exactly mmdet's.

    How it hooks into mmdet without copying its loss code:

    - a forward hook on ``mask_feature_head`` records the mask features (B, C, h, w) during
      :meth:`loss` only;
    - :meth:`_get_targets_single` is a thin wrapper that first runs mmdet's selection on the
      positive indices ``arange(P_i)`` instead of the masks, with torch's RNG state forked, so the
      indices it keeps are those the real call right after keeps from the same random draw;
    - :meth:`loss_by_feat` returns mmdet's ``loss_mask`` unchanged and then adds ``loss_ibs``, so
      IBS does not change the random draws of the standard losses.

    ``loss_ibs = loss_weight * sum_i sum_{n <= N_i} mean_{j in partners(i)} mean_x
    FL(z_in^j(x), 0) / max(sum_i N_i, 1)``: the normaliser is that of ``loss_mask`` (the selected
    positives of this process, not all-reduced).

    Args:
        *args: Positional arguments of :class:`mmdet.models.dense_heads.CondInstMaskHead`.
        loss_ibs (:obj:`ConfigDict` or dict, optional): Config of the IBS loss, an
            :class:`~mmibs.models.losses.IBSLoss` whose ``partner``, ``alpha``, ``gamma`` and
            ``loss_weight`` are used (dense mode only: ``num_points`` must be None), e.g.
            ``dict(type='IBSLoss', partner='random', loss_weight=1.0)``. Defaults to None: no IBS,
            the head is mmdet's ``CondInstMaskHead``.
        **kwargs: Keyword arguments of :class:`mmdet.models.dense_heads.CondInstMaskHead`.
    """

    def __init__(self, *args, loss_ibs: OptConfigType = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loss_ibs = MODELS.build(loss_ibs) if loss_ibs is not None else None
        if self.loss_ibs is not None and getattr(self.loss_ibs, 'num_points', None) is not None:
            raise ValueError(f'{type(self).__name__}: loss_ibs.num_points must be None (IBS on '
                             f'CondInst averages over all mask pixels), got '
                             f'{self.loss_ibs.num_points}')
        self._ibs_mask_feats: Optional[Tensor] = None
        self._ibs_selected: Optional[List[Tensor]] = None
        self._ibs_recording = False
        self.mask_feature_head.register_forward_hook(self._record_mask_feats)

    def _record_mask_feats(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        """Forward hook of ``mask_feature_head``: keep the (B, C, h, w) mask features."""
        if self._ibs_recording:
            self._ibs_mask_feats = output

    def loss(self,
             x: Sequence[Tensor],
             batch_data_samples: SampleList,
             positive_infos: OptInstanceList = None,
             **kwargs) -> dict:
        """mmdet's ``loss`` with IBS recording switched on for its duration.

        Args:
            x (Sequence[Tensor]): Multi-level features, each (B, C_l, H_l, W_l).
            batch_data_samples (list[:obj:`DetDataSample`]): The data samples.
            positive_infos (list[:obj:`InstanceData`], optional): Positives of the box head.

        Returns:
            dict[str, Tensor]: ``loss_mask`` and, with IBS, ``loss_ibs``.
        """
        if self.loss_ibs is None:
            return super().loss(x, batch_data_samples, positive_infos=positive_infos, **kwargs)
        self._ibs_recording = True
        try:
            return super().loss(x, batch_data_samples, positive_infos=positive_infos, **kwargs)
        finally:
            self._ibs_recording = False
            self._ibs_mask_feats = None

    def _get_targets_single(self, mask_preds: Tensor, gt_instances: InstanceData,
                            positive_info: InstanceData) -> tuple:
        """mmdet's ``_get_targets_single``, also recording which positives it keeps.

        Args and returns are those of
        :meth:`mmdet.models.dense_heads.CondInstMaskHead._get_targets_single`.
        """
        if self._ibs_selected is not None:
            self._ibs_selected.append(
                self._selected_positives(mask_preds, gt_instances, positive_info))
        return super()._get_targets_single(mask_preds, gt_instances, positive_info)

    def _selected_positives(self, mask_preds: Tensor, gt_instances: InstanceData,
                            positive_info: InstanceData) -> Tensor:
        """Indices of the positives that mmdet's mask loss keeps for one image.

        mmdet's selection only indexes the rows of ``mask_preds``; run on ``arange(P_i)`` it
        returns the kept indices. torch's RNG is forked, so the real call that follows draws the
        same ``randperm`` (``max_masks_to_train``).

        Args:
            mask_preds (Tensor): Mask logits of the image's positives, shape (P_i, H, W).
            gt_instances (:obj:`InstanceData`): The image's ground truth.
            positive_info (:obj:`InstanceData`): The image's positives.

        Returns:
            Tensor: Kept positive indices, shape (N_i, ), long; empty when the image has no
            ground truth or no positive (mmdet's mask loss then skips it).
        """
        positions = torch.arange(mask_preds.shape[0], device=mask_preds.device)
        devices = [mask_preds.device] if mask_preds.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            kept, targets, _ = super()._get_targets_single(positions, gt_instances, positive_info)
        if targets is None:
            return positions[:0]
        return kept

    def loss_by_feat(self, mask_preds: List[Tensor], batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict], positive_infos: InstanceList, **kwargs) -> dict:
        """mmdet's mask loss, then the IBS loss of the selected positives.

        Args:
            mask_preds (list[Tensor]): Mask logits per image, each (P_i, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): Ground truth with ``bboxes``,
                ``labels`` and ``masks``.
            batch_img_metas (list[dict]): Image meta information.
            positive_infos (list[:obj:`InstanceData`]): Positives of the box head with
                ``param_preds``, ``points`` and ``strides``.

        Returns:
            dict[str, Tensor]: ``loss_mask`` and, with IBS, ``loss_ibs``.
        """
        if self.loss_ibs is None:
            return super().loss_by_feat(mask_preds, batch_gt_instances, batch_img_metas,
                                        positive_infos, **kwargs)
        mask_feats = self._ibs_mask_feats
        if mask_feats is None:
            raise RuntimeError(f'{type(self).__name__}.loss_by_feat needs the mask features that '
                               'loss() records during the forward pass; call loss() instead')
        self._ibs_selected = []
        try:
            losses = super().loss_by_feat(mask_preds, batch_gt_instances, batch_img_metas,
                                          positive_infos, **kwargs)
            selected = self._ibs_selected
        finally:
            self._ibs_selected = None
        if len(selected) != len(mask_preds):
            raise RuntimeError(f'{type(self).__name__}: expected one selection per image '
                               f'({len(mask_preds)}), recorded {len(selected)}')
        losses['loss_ibs'] = self._ibs_loss(mask_feats, positive_infos, selected)
        return losses

    def _ibs_loss(self, mask_feats: Tensor, positive_infos: InstanceList,
                  selected: List[Tensor]) -> Tensor:
        """The IBS loss of the selected positives on their partner images.

        Args:
            mask_feats (Tensor): Mask features, shape (B, C, h, w).
            positive_infos (list[:obj:`InstanceData`]): Positives of each image.
            selected (list[Tensor]): Kept positive indices of each image, each (N_i, ).

        Returns:
            Tensor: Scalar float32 loss; an exact zero that keeps the mask features and the
            dynamic parameters in the graph when no image has both positives and a partner.
        """
        ibs = self.loss_ibs
        partners = ibs_partners(mask_feats.shape[0], ibs.partner, mask_feats.device)
        total = mask_feats.float().sum() * 0
        for info in positive_infos:
            total = total + info.param_preds.float().sum() * 0
        num_masks = sum(int(sel.numel()) for sel in selected)
        for img_id, (info, sel) in enumerate(zip(positive_infos, selected)):
            if sel.numel() == 0 or not partners[img_id]:
                continue
            # shape (num_partners, N_i) -> (N_i, )
            per_mask = torch.stack([
                self._partner_focal_mean(mask_feats[partner], info[sel])
                for partner in partners[img_id]
            ]).mean(dim=0)
            total = total + per_mask.sum()
        return ibs.loss_weight * total / max(num_masks, 1)

    def _partner_focal_mean(self, partner_mask_feat: Tensor, info: InstanceData) -> Tensor:
        """Mean focal loss to zero of each dynamic head on a partner's mask features.

        Args:
            partner_mask_feat (Tensor): The partner image's mask features, shape (C, h, w).
            info (:obj:`InstanceData`): ``param_preds`` (N, num_params), ``points`` (N, 2) and
                ``strides`` (N, ) of the positives of another image.

        Returns:
            Tensor: Shape (N, ), float32: the mean over the H x W mask logits of each positive.
        """
        # mmdet's dynamic conv path with the positives' own points: shape (N, H, W)
        (logits, ) = self.forward_single(partner_mask_feat, info)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            loss = focal_loss_to_zero(logits.float(), self.loss_ibs.alpha, self.loss_ibs.gamma)
            return loss.flatten(1).mean(dim=1)
