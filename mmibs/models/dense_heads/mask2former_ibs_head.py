# Copyright (c) mmibs contributors. All rights reserved.
"""Mask2Former head with Intra-Batch Supervision (``docs/method.md``, Mask2Former + IBS).

Shape shorthand: B images, Q queries, C mask channels, H x W mask-feature size (stride 4),
L = 1 + number of decoder layers prediction heads (10 in the released model).
"""
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.utils import OptConfigType

from mmibs.registry import MODELS
from .query_ibs_mixin import QueryIBSMixin


@MODELS.register_module()
class Mask2FormerIBSHead(QueryIBSMixin, Mask2FormerHead):
    """Mask2Former head plus the IBS loss.

    See `Intra-Batch Supervision for Panoptic Segmentation on High-Resolution Images
    <https://arxiv.org/abs/2304.08222>`_. In training, the mask embeddings of the queries matched
    to a **thing** ground truth (label < ``num_things_classes``) are multiplied with the mask
    features of a partner image of the batch and supervised towards empty masks
    (:class:`~mmibs.models.losses.IBSLoss`). This happens for the outputs of decoder layers 1..9,
    not for the query-only prediction (layer 0), as the release's ``i > 0``. The IBS logits are
    computed only for those queries, not for all Q (cheaper than the release). Inference is
    exactly mmdet's.

    The IBS machinery (forward hooks on the pixel decoder and ``mask_embed`` during
    :meth:`loss`, a ``get_targets`` wrapper that records each layer's Hungarian assignment, the
    ``loss_ibs`` / ``d{l}.loss_ibs`` terms added after mmdet's losses) is
    :class:`~mmibs.models.dense_heads.query_ibs_mixin.QueryIBSMixin`; this class only sets the
    released defaults. Mask2Former calls ``mask_embed`` once per prediction head, so the mixin
    records one (B, Q, C) embedding per layer; loss keys ``loss_ibs`` (last layer) and
    ``d{l}.loss_ibs`` (l = 1..L-2, plus ``d0`` when ``ibs_skip_first_layer=False``).

    The IBS normaliser is the number of IBS masks on this process, not all-reduced (the
    release's normaliser, ``docs/method.md``).

    Args:
        *args: Positional arguments of :class:`mmdet.models.dense_heads.Mask2FormerHead`.
        loss_ibs (:obj:`ConfigDict` or dict, optional): Config of the IBS loss; None switches IBS
            off (mmdet's ``Mask2FormerHead`` exactly). Defaults to the Cityscapes
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
                 loss_ibs: OptConfigType = dict(
                     type='IBSLoss',
                     partner='pair',
                     num_points=12544,
                     oversample_ratio=3.0,
                     importance_sample_ratio=0.75,
                     loss_weight=50.0),
                 ibs_skip_first_layer: bool = True,
                 **kwargs) -> None:
        super().__init__(
            *args, loss_ibs=loss_ibs, ibs_skip_first_layer=ibs_skip_first_layer, **kwargs)
