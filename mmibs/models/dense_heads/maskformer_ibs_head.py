# Copyright (c) mmibs contributors. All rights reserved.
"""MaskFormer head with Intra-Batch Supervision (``docs/method.md``, IBS in MaskFormer).

Shape shorthand: B images, Q queries, C mask channels, H x W mask-feature size (stride 4),
L decoder layers (6 in MaskFormer), each one prediction layer.
"""
from mmdet.models.dense_heads import MaskFormerHead
from mmdet.utils import OptConfigType

from mmibs.registry import MODELS
from .query_ibs_mixin import QueryIBSMixin


@MODELS.register_module()
class MaskFormerIBSHead(QueryIBSMixin, MaskFormerHead):
    """MaskFormer head plus the IBS loss.

    IBS (`Intra-Batch Supervision for Panoptic Segmentation on High-Resolution Images
    <https://arxiv.org/abs/2304.08222>`_) on MaskFormer (`Per-Pixel Classification is Not All
    You Need for Semantic Segmentation <https://arxiv.org/abs/2107.06278>`_), which the paper did
    not try. MaskFormer predicts each query's mask as its mask embedding (B, Q, C) times the
    pixel decoder's stride-4 mask features (B, C, H, W). In training, the mask embeddings of the
    queries that a layer's Hungarian matching assigned to a **thing** ground truth
    (label < ``num_things_classes``) are multiplied with the mask features of a partner image of
    the batch and supervised towards empty masks with a sigmoid focal loss against 0
    (:class:`~mmibs.models.losses.IBSLoss`), for the outputs of **every** decoder layer:
    MaskFormer has no query-only prediction, so nothing is skipped
    (``ibs_skip_first_layer=False``). Loss keys ``d0.loss_ibs`` .. ``d{L-2}.loss_ibs`` and
    ``loss_ibs`` (the last layer), next to mmdet's ``d{l}.loss_cls`` / ``loss_mask`` /
    ``loss_dice``.

    MaskFormer's own mask losses are dense (every pixel, no point sampling), so its IBS is
    dense too by default (``num_points=None``): the mean of the focal term over all H x W
    positions of the stride-4 mask features, the positions at which the IBS logits are computed
    (nothing is upsampled, as in Panoptic FCN + IBS). The normaliser is the number of IBS masks on
    this process, not all-reduced.

    The machinery (hooks, assignment recording, loss keys) is
    :class:`~mmibs.models.dense_heads.query_ibs_mixin.QueryIBSMixin`. MaskFormer calls
    ``mask_embed`` once on the stacked decoder outputs, so the mixin records one (L, B, Q, C)
    tensor and splits it per layer. Inference is exactly mmdet's.

    Args:
        *args: Positional arguments of :class:`mmdet.models.dense_heads.MaskFormerHead`.
        loss_ibs (:obj:`ConfigDict` or dict, optional): Config of the IBS loss; None switches IBS
            off (mmdet's ``MaskFormerHead`` exactly). Defaults to ``dict(type='IBSLoss',
            partner='pair', num_points=None, loss_weight=4.0)``: dense, with the weight that
            the paper's loss-ratio rule gives the tiny MaskFormer (see
            ``configs/maskformer/README.md``). ``partner='pair'`` needs an even batch of
            crop-sampled pairs per process; use ``'random'`` otherwise.
        ibs_skip_first_layer (bool): Leave the first decoder layer out of IBS. Defaults to False
            (MaskFormer's first layer already attends to the image).
        **kwargs: Keyword arguments of :class:`mmdet.models.dense_heads.MaskFormerHead`.
    """

    def __init__(self,
                 *args,
                 loss_ibs: OptConfigType = dict(
                     type='IBSLoss', partner='pair', num_points=None, loss_weight=4.0),
                 ibs_skip_first_layer: bool = False,
                 **kwargs) -> None:
        super().__init__(
            *args, loss_ibs=loss_ibs, ibs_skip_first_layer=ibs_skip_first_layer, **kwargs)
