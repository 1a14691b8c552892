# Copyright (c) mmibs contributors. All rights reserved.
"""IBS for query-based mask heads (MaskFormer, Mask2Former), shared as a mixin.

Shape shorthand: B images, Q queries, C mask channels, H x W mask-feature size (stride 4),
L prediction layers (the layers that mmdet's ``loss_by_feat`` supervises).
"""
from typing import Dict, List, Optional, Tuple

from mmdet.structures import SampleList
from mmdet.utils import InstanceList, OptConfigType
from torch import Tensor, nn

from mmibs.registry import MODELS


class _IBSRecord:
    """What one ``loss()`` call records for IBS.

    Attributes:
        mask_features (Tensor | None): Pixel-decoder mask features, shape (B, C, H, W).
        mask_embeds (list[Tensor]): Outputs of ``mask_embed``, in call order: one (B, Q, C)
            tensor per prediction layer (Mask2Former calls ``mask_embed`` once per layer), or one
            (L, B, Q, C) tensor for all layers (MaskFormer calls it once on the stacked decoder
            outputs).
        targets (list[tuple]): ``(labels_list, mask_weights_list)`` of each ``get_targets`` call,
            in call order (one per prediction layer); each list holds B tensors of shape (Q, ).
    """

    def __init__(self) -> None:
        self.mask_features: Optional[Tensor] = None
        self.mask_embeds: List[Tensor] = []
        self.targets: List[Tuple[List[Tensor], List[Tensor]]] = []


class QueryIBSMixin:
    """Adds the IBS loss to an mmdet query-based mask head without copying its loss code.

    Mix it in before the mmdet head: ``class MyIBSHead(QueryIBSMixin, MaskFormerHead)``. The head
    must have

    - ``self.pixel_decoder``, a module whose output's first element is the mask features
      (B, C, H, W);
    - ``self.mask_embed``, a module that maps decoder outputs to query mask embeddings, called
      once per prediction layer with a (B, Q, C) output or once for all layers with an
      (L, B, Q, C) output;
    - mmdet's ``get_targets`` (``labels_list`` first, ``mask_weights_list`` fourth), called once
      per layer, in layer order, by ``loss_by_feat``; and ``num_things_classes``.

    What it does (style: "match once, reuse everywhere"):

    - two forward hooks record, during :meth:`loss` only, the pixel decoder's mask features and
      the outputs of ``self.mask_embed``;
    - :meth:`get_targets` is a thin wrapper that records ``labels`` and ``mask_weights`` of each
      call, so record ``l`` is layer ``l``'s Hungarian assignment: the very one its class, mask
      and dice losses use;
    - :meth:`loss_by_feat` returns the head's losses unchanged and adds ``loss_ibs`` (last layer)
      and ``d{l}.loss_ibs`` (l = first IBS layer .. L-2). IBS runs after the standard losses, so
      it does not change their random draws either.

    The IBS embeddings of a layer are the mask embeddings of the queries matched to a **thing**
    ground truth (label < ``num_things_classes``); they meet the mask features of a partner image
    in :class:`~mmibs.models.losses.IBSLoss`, normalised by their number on this process.

    Args:
        *args: Positional arguments of the mmdet head.
        loss_ibs (:obj:`ConfigDict` or dict, optional): Config of the IBS loss. None switches IBS
            off: nothing is recorded and the head is the mmdet head.
        ibs_skip_first_layer (bool): Leave the first prediction layer out of IBS (Mask2Former's
            query-only prediction, as released).
        **kwargs: Keyword arguments of the mmdet head. Unknown keyword arguments that mention
            IBS are refused, since mmdet's MaskFormer heads swallow unknown arguments silently.
    """

    def __init__(self, *args, loss_ibs: OptConfigType, ibs_skip_first_layer: bool,
                 **kwargs) -> None:
        # mmdet's MaskFormerHead swallows unknown keyword arguments, so a misspelled IBS option
        # (`loss_ibss=...`) would silently train without IBS: refuse it.
        unknown = sorted(k for k in kwargs if 'ibs' in k.lower())
        if unknown:
            raise TypeError(f'{type(self).__name__}: unknown IBS argument(s) {unknown}; the IBS '
                            'arguments are loss_ibs and ibs_skip_first_layer')
        super().__init__(*args, **kwargs)
        self.loss_ibs = None if loss_ibs is None else MODELS.build(loss_ibs)
        self.ibs_skip_first_layer = ibs_skip_first_layer
        self._ibs_record: Optional[_IBSRecord] = None
        self.pixel_decoder.register_forward_hook(self._record_mask_features)
        self.mask_embed.register_forward_hook(self._record_mask_embed)

    def _record_mask_features(self, module: nn.Module, args: tuple, output: tuple) -> None:
        """Forward hook of the pixel decoder: keep ``mask_features`` (B, C, H, W)."""
        if self._ibs_record is not None:
            self._ibs_record.mask_features = output[0]

    def _record_mask_embed(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        """Forward hook of ``self.mask_embed``: keep its (B, Q, C) or (L, B, Q, C) output."""
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
        """The mmdet head's ``loss`` with IBS recording switched on for its duration.

        Args:
            x (tuple[Tensor]): Multi-level features from the upstream network.
            batch_data_samples (list[:obj:`DetDataSample`]): The data samples.

        Returns:
            dict[str, Tensor]: The mmdet head's losses plus ``loss_ibs`` and ``d{l}.loss_ibs``
            (only the mmdet head's losses when ``loss_ibs`` is None).
        """
        if self.loss_ibs is None:
            return super().loss(x, batch_data_samples)
        self._ibs_record = _IBSRecord()
        try:
            return super().loss(x, batch_data_samples)
        finally:
            self._ibs_record = None

    def loss_by_feat(self, all_cls_scores: List[Tensor], all_mask_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """The mmdet head's losses of every layer, then the IBS loss of the IBS layers.

        Args:
            all_cls_scores (list[Tensor] | Tensor): Class logits per layer, each (B, Q, K + 1).
            all_mask_preds (list[Tensor] | Tensor): Mask logits per layer, each (B, Q, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): Preprocessed ground truth (things
                first, then stuff) with ``labels`` and ``masks``.
            batch_img_metas (list[dict]): Image meta information.

        Returns:
            dict[str, Tensor]: A dictionary of loss components.
        """
        if self.loss_ibs is None:
            return super().loss_by_feat(all_cls_scores, all_mask_preds, batch_gt_instances,
                                        batch_img_metas)
        record = self._ibs_record
        if record is None:
            raise RuntimeError(f'{type(self).__name__}.loss_by_feat needs the mask embeddings '
                               'that loss() records during the forward pass; call loss() instead')
        loss_dict = super().loss_by_feat(all_cls_scores, all_mask_preds, batch_gt_instances,
                                         batch_img_metas)
        num_layers = len(all_cls_scores)
        layer_embeds = self._layer_mask_embeds(record)
        if len(layer_embeds) != num_layers or len(record.targets) != num_layers:
            raise RuntimeError(
                f'{type(self).__name__}: expected one mask embedding and one assignment per '
                f'prediction layer ({num_layers}), recorded {len(layer_embeds)} and '
                f'{len(record.targets)}')
        first = 1 if self.ibs_skip_first_layer else 0
        for layer in range(first, num_layers):
            labels_list, mask_weights_list = record.targets[layer]
            embeddings = self._thing_embeddings(layer_embeds[layer], labels_list,
                                                mask_weights_list)
            key = 'loss_ibs' if layer == num_layers - 1 else f'd{layer}.loss_ibs'
            loss_dict[key] = self.loss_ibs(embeddings, record.mask_features)
        return loss_dict

    @staticmethod
    def _layer_mask_embeds(record: _IBSRecord) -> List[Tensor]:
        """The recorded mask embeddings as one (B, Q, C) tensor per prediction layer.

        Args:
            record (_IBSRecord): The record of this ``loss()`` call.

        Returns:
            list[Tensor]: L tensors of shape (B, Q, C), in layer order.
        """
        layer_embeds = []
        for output in record.mask_embeds:
            if output.dim() == 4:  # (L, B, Q, C): every layer in one call (MaskFormer)
                layer_embeds.extend(output.unbind(0))
            else:  # (B, Q, C): one layer per call (Mask2Former)
                layer_embeds.append(output)
        return layer_embeds

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
