# Copyright (c) mmibs contributors. All rights reserved.
"""Mask2Former head with Intra-Batch Supervision (``docs/method.md``, Mask2Former + IBS).

Shape shorthand: B images, Q queries, C mask channels, H x W mask-feature size (stride 4),
L = 1 + number of decoder layers prediction heads (10 in the released model).
"""
from typing import Dict, List, Optional, Tuple

from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, InstanceList
from torch import Tensor, nn

from mmibs.registry import MODELS


class _IBSRecord:
    """What one ``loss()`` call records for IBS.

    Attributes:
        mask_features (Tensor | None): Pixel-decoder mask features, shape (B, C, H, W).
        mask_embeds (list[Tensor]): Query mask embeddings of each prediction head, in call order,
            each of shape (B, Q, C).
        targets (list[tuple]): ``(labels_list, mask_weights_list)`` of each ``get_targets`` call,
            in call order (one per prediction head); each list holds B tensors of shape (Q, ).
    """

    def __init__(self) -> None:
        self.mask_features: Optional[Tensor] = None
        self.mask_embeds: List[Tensor] = []
        self.targets: List[Tuple[List[Tensor], List[Tensor]]] = []


@MODELS.register_module()
class Mask2FormerIBSHead(Mask2FormerHead):
    """Mask2Former head plus the IBS loss.

    See `Intra-Batch Supervision for Panoptic Segmentation on High-Resolution Images
    <https://arxiv.org/abs/2304.08222>`_. In training, the mask embeddings of the queries matched
    to a **thing** ground truth (label < ``num_things_classes``) are multiplied with the mask
    features of a partner image of the batch and supervised towards empty masks
    (:class:`~mmibs.models.losses.IBSLoss`). This happens for the outputs of decoder layers 1..9,
    not for the query-only prediction (layer 0), as the release's ``i > 0``. The IBS logits are
    computed only for those queries, not for all Q (cheaper than the release). Inference is
    exactly mmdet's.

    How it hooks into mmdet without copying its loss code (style: "match once, reuse
    everywhere"):

    - two forward hooks record, during :meth:`loss` only, the pixel decoder's mask features
      and the output of ``self.mask_embed`` at each of the L prediction heads;
    - :meth:`get_targets` is a thin wrapper that records ``labels`` and ``mask_weights`` of each
      call. mmdet's ``loss_by_feat`` maps ``_loss_by_feat_single`` over the layers in order and
      each calls ``get_targets`` once, so record ``l`` is layer ``l``'s Hungarian assignment: the
      very one its class, mask and dice losses use (the release's ``loss_masks`` reuses them too);
    - :meth:`loss_by_feat` returns mmdet's losses unchanged and adds ``loss_ibs`` (last layer) and
      ``d{l}.loss_ibs`` (l = 1..L-2, plus ``d0`` when ``ibs_skip_first_layer=False``). IBS runs
      after the standard losses, so it does not change their random draws either.

    The IBS normaliser is the number of IBS masks on this process, not all-reduced (the
    release's normaliser, ``docs/method.md``).

    Args:
        *args: Positional arguments of :class:`mmdet.models.dense_heads.Mask2FormerHead`.
        loss_ibs (:obj:`ConfigDict` or dict): Config of the IBS loss. Defaults to the Cityscapes
            release: ``dict(type='IBSLoss', partner='pair', num_points=12544,
            oversample_ratio=3.0, importance_sample_ratio=0.75, loss_weight=50.0)``; the
            Mapillary Vistas release uses ``loss_weight=100.0``. ``partner='pair'`` needs an even
            batch of crop-sampled pairs per process; use ``'random'`` otherwise.
        ibs_skip_first_layer (bool): Skip the query-only prediction (layer 0), as released.
            Defaults to True.
        **kwargs: Keyword arguments of :class:`mmdet.models.dense_heads.Mask2FormerHead`.
    """

    def __init__(self,
                 *args,
                 loss_ibs: ConfigType = dict(
                     type='IBSLoss',
                     partner='pair',
                     num_points=12544,
                     oversample_ratio=3.0,
                     importance_sample_ratio=0.75,
                     loss_weight=50.0),
                 ibs_skip_first_layer: bool = True,
                 **kwargs) -> None:
        # mmdet's Mask2FormerHead swallows unknown keyword arguments, so a misspelled IBS option
        # (`loss_ibss=...`) would silently train without IBS: refuse it.
        unknown = sorted(k for k in kwargs if 'ibs' in k.lower())
        if unknown:
            raise TypeError(f'{type(self).__name__}: unknown IBS argument(s) {unknown}; the IBS '
                            'arguments are loss_ibs and ibs_skip_first_layer')
        super().__init__(*args, **kwargs)
        self.loss_ibs = MODELS.build(loss_ibs)
        self.ibs_skip_first_layer = ibs_skip_first_layer
        self._ibs_record: Optional[_IBSRecord] = None
        self.pixel_decoder.register_forward_hook(self._record_mask_features)
        self.mask_embed.register_forward_hook(self._record_mask_embed)

    def _record_mask_features(self, module: nn.Module, args: tuple, output: tuple) -> None:
        """Forward hook of the pixel decoder: keep ``mask_features`` (B, C, H, W)."""
        if self._ibs_record is not None:
            self._ibs_record.mask_features = output[0]

    def _record_mask_embed(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        """Forward hook of ``self.mask_embed``: keep one prediction head's (B, Q, C) output."""
        if self._ibs_record is not None:
            self._ibs_record.mask_embeds.append(output)

    def get_targets(self, cls_scores_list: List[Tensor], mask_preds_list: List[Tensor],
                    batch_gt_instances: InstanceList, batch_img_metas: List[dict],
                    **kwargs) -> tuple:
        """mmdet's ``get_targets``, also recording ``labels`` and ``mask_weights`` for IBS.

        Args and returns are those of
        :meth:`mmdet.models.dense_heads.MaskFormerHead.get_targets`.
        """
        targets = super().get_targets(cls_scores_list, mask_preds_list, batch_gt_instances,
                                      batch_img_metas, **kwargs)
        if self._ibs_record is not None:
            self._ibs_record.targets.append((targets[0], targets[3]))
        return targets

    def loss(self, x: Tuple[Tensor], batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """mmdet's ``loss`` with IBS recording switched on for its duration.

        Args:
            x (tuple[Tensor]): Multi-level features from the upstream network.
            batch_data_samples (list[:obj:`DetDataSample`]): The data samples.

        Returns:
            dict[str, Tensor]: mmdet's losses plus ``loss_ibs`` and ``d{l}.loss_ibs``.
        """
        self._ibs_record = _IBSRecord()
        try:
            return super().loss(x, batch_data_samples)
        finally:
            self._ibs_record = None

    def loss_by_feat(self, all_cls_scores: List[Tensor], all_mask_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """mmdet's losses of every layer, then the IBS loss of layers 1..L-1.

        Args:
            all_cls_scores (list[Tensor]): Class logits per layer, each (B, Q, K + 1).
            all_mask_preds (list[Tensor]): Mask logits per layer, each (B, Q, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): Preprocessed ground truth (things
                first, then stuff) with ``labels`` and ``masks``.
            batch_img_metas (list[dict]): Image meta information.

        Returns:
            dict[str, Tensor]: A dictionary of loss components.
        """
        record = self._ibs_record
        if record is None:
            raise RuntimeError('Mask2FormerIBSHead.loss_by_feat needs the mask embeddings that '
                               'loss() records during the forward pass; call loss() instead')
        loss_dict = super().loss_by_feat(all_cls_scores, all_mask_preds, batch_gt_instances,
                                         batch_img_metas)
        num_layers = len(all_cls_scores)
        if len(record.mask_embeds) != num_layers or len(record.targets) != num_layers:
            raise RuntimeError(
                f'Mask2FormerIBSHead: expected one mask embedding and one assignment per '
                f'prediction layer ({num_layers}), recorded {len(record.mask_embeds)} and '
                f'{len(record.targets)}')
        first = 1 if self.ibs_skip_first_layer else 0
        for layer in range(first, num_layers):
            labels_list, mask_weights_list = record.targets[layer]
            embeddings = self._thing_embeddings(record.mask_embeds[layer], labels_list,
                                                mask_weights_list)
            key = 'loss_ibs' if layer == num_layers - 1 else f'd{layer}.loss_ibs'
            loss_dict[key] = self.loss_ibs(embeddings, record.mask_features)
        return loss_dict

    def _thing_embeddings(self, mask_embed: Tensor, labels_list: List[Tensor],
                          mask_weights_list: List[Tensor]) -> List[Tensor]:
        """Mask embeddings of the queries matched to a thing ground truth, per image.

        Args:
            mask_embed (Tensor): One layer's query mask embeddings, shape (B, Q, C).
            labels_list (list[Tensor]): Assigned labels per image, each (Q, ); unmatched queries
                hold ``num_classes``.
            mask_weights_list (list[Tensor]): 1 for matched queries, each (Q, ).

        Returns:
            list[Tensor]: B tensors of shape (N_i, C), N_i the matched thing queries of image i.
        """
        embeddings = []
        for embed, labels, mask_weights in zip(mask_embed, labels_list, mask_weights_list):
            # things are labels 0..T-1 in mmdet (docs/release_differences.md: without the
            # release's "contiguous id > 0" quirk)
            is_thing = (mask_weights > 0) & (labels < self.num_things_classes)
            embeddings.append(embed[is_thing])
        return embeddings
