# Copyright (c) mmibs contributors. All rights reserved.
"""The network part of the Panoptic FCN head (mmyolo's HeadModule/Head split).

Shape shorthand: B images, L kernel levels (P3..P7), T thing classes, R region classes, C_k kernel
feature channels, C_e embedding channels, H/4 x W/4 the stride-4 map, Hl x Wl one level.
"""
from typing import List, Sequence, Tuple

from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmibs.registry import MODELS


@MODELS.register_module()
class PanopticFCNHeadModule(BaseModule):
    """Feature encoder, kernel generator (position + kernel heads shared over P3-P7) and the thing
    and stuff kernel generators (1x1 convs C_k -> C_e), ``docs/method.md``.

    Args:
        num_things_classes (int): T, channels of the center heatmaps.
        num_region_classes (int): R, channels of the region maps (the head sets it from
            ``stuff_mode``).
        encoder_in_indices (Sequence[int]): Neck outputs fed to the feature encoder.
            Defaults to (0, 1, 2, 3) (P2-P5 of a P2-P7 FPN).
        kernel_in_indices (Sequence[int]): Neck outputs fed to the kernel generator.
            Defaults to (1, 2, 3, 4, 5) (P3-P7).
        feature_encoder (dict): Config of :class:`PanopticFCNFeatureEncoder`.
        position_head (dict): Config of :class:`PanopticFCNPositionHead` (its class counts are set
            here).
        kernel_head (dict): Config of :class:`PanopticFCNKernelHead`.
        init_cfg (dict or list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 num_things_classes: int,
                 num_region_classes: int,
                 encoder_in_indices: Sequence[int] = (0, 1, 2, 3),
                 kernel_in_indices: Sequence[int] = (1, 2, 3, 4, 5),
                 feature_encoder: ConfigType = dict(type='PanopticFCNFeatureEncoder'),
                 position_head: ConfigType = dict(type='PanopticFCNPositionHead'),
                 kernel_head: ConfigType = dict(type='PanopticFCNKernelHead'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.encoder_in_indices = tuple(encoder_in_indices)
        self.kernel_in_indices = tuple(kernel_in_indices)
        self.feature_encoder = MODELS.build(feature_encoder)
        position_head = dict(position_head)
        position_head.update(
            num_things_classes=num_things_classes, num_region_classes=num_region_classes)
        self.position_head = MODELS.build(position_head)
        self.kernel_head = MODELS.build(kernel_head)
        kernel_channels = self.kernel_head.out_channels
        embed_channels = self.feature_encoder.out_channels
        self.thing_embed = nn.Conv2d(kernel_channels, embed_channels, 1)
        self.stuff_embed = nn.Conv2d(kernel_channels, embed_channels, 1)
        for layer in (self.thing_embed, self.stuff_embed):
            nn.init.normal_(layer.weight, mean=0, std=0.01)
            nn.init.zeros_(layer.bias)

    @property
    def embed_channels(self) -> int:
        """C_e, the dimension of F and of the embeddings."""
        return self.thing_embed.out_channels

    def forward(self,
                feats: Sequence[Tensor]) -> Tuple[Tensor, List[Tensor], List[Tensor], List[Tensor]]:
        """Run the encoder on P2-P5 and the shared heads on every level of P3-P7.

        Args:
            feats (Sequence[Tensor]): Neck outputs, shapes (B, C, H/s, W/s).

        Returns:
            tuple: ``mask_feat`` F (B, C_e, H/4, W/4); per level ``center_logits``
            (B, T, Hl, Wl), ``region_logits`` (B, R, Hl, Wl) and ``kernel_maps``
            (B, C_k, Hl, Wl).
        """
        needed = max(self.encoder_in_indices + self.kernel_in_indices) + 1
        if len(feats) < needed:
            raise ValueError(f'PanopticFCNHeadModule needs {needed} neck outputs '
                             f'(encoder {self.encoder_in_indices}, kernels '
                             f'{self.kernel_in_indices}), got {len(feats)}')
        mask_feat = self.feature_encoder([feats[i] for i in self.encoder_in_indices])
        center_logits, region_logits, kernel_maps = [], [], []
        for i in self.kernel_in_indices:
            center, region = self.position_head(feats[i])
            center_logits.append(center)
            region_logits.append(region)
            kernel_maps.append(self.kernel_head(feats[i]))
        return mask_feat, center_logits, region_logits, kernel_maps
