# Copyright (c) mmibs contributors. All rights reserved.
"""Building blocks of Panoptic FCN (Li et al., CVPR 2021, https://arxiv.org/abs/2012.00720).

``docs/method.md`` describes the modules; their behaviour and initialisation follow the released
detectron2 code (PanopticFCN-IBS ``panopticfcn/head.py`` and ``backbone_utils.py``).

Shape shorthand: B images, C channels, L pyramid levels, T thing classes, R region classes
(the stuff head's channels), H/4 x W/4 the stride-4 map, Hl x Wl the map of one level.
"""
import math
from typing import Sequence

import torch
from mmcv.cnn import ConvModule
from mmcv.ops import ModulatedDeformConv2dPack
from mmdet.models.layers import ConvUpsample
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmibs.registry import MODELS


def add_coord_channels(x: Tensor) -> Tensor:
    """CoordConv input: append the row and column coordinates, each in [-1, 1].

    The row coordinate (varying along H) comes first and the column coordinate second, the
    release's channel order, so its checkpoints' first-conv weights keep their meaning.

    Args:
        x (Tensor): Features, shape (B, C, H, W).

    Returns:
        Tensor: Shape (B, C + 2, H, W).
    """
    b, _, h, w = x.shape
    rows = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    cols = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    # shape (H, ) and (W, ) -> (B, 1, H, W) each
    grid_rows = rows.view(1, 1, h, 1).expand(b, 1, h, w)
    grid_cols = cols.view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([x, grid_rows, grid_cols], dim=1)


def reset_to_release_init(module: nn.Module) -> None:
    """Give every conv of ``module`` the initialisation of the release's ``SingleHead``.

    Plain convs (detectron2 ``Conv2d``) and the offset convs of the deformable convs (a plain
    ``nn.Conv2d`` in the release's ``ModulatedDeformConvWithOff``) keep PyTorch's default
    initialisation; the deformable weights get detectron2 ``ModulatedDeformConv``'s
    kaiming-uniform (ReLU gain) and a zero bias. mmcv's ConvModule (kaiming-normal) and
    ``ModulatedDeformConv2dPack`` (uniform weights, zero offsets) initialise differently, so this
    runs after construction and after mmengine's ``init_weights``.

    Args:
        module (nn.Module): A module holding ConvModules.
    """
    for m in module.modules():
        if isinstance(m, ModulatedDeformConv2dPack):
            nn.init.kaiming_uniform_(m.weight, nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            m.conv_offset.reset_parameters()
        elif isinstance(m, nn.Conv2d):
            m.reset_parameters()


class ConvNormReLUStack(BaseModule):
    """``num_convs`` x ConvModule [conv3x3 (optionally modulated deformable), norm, ReLU] with an
    optional CoordConv input: the release's ``SingleHead``.

    The conv has a bias only without norm (ConvModule's ``bias='auto'``). Initialisation is the
    release's (:func:`reset_to_release_init`).

    Args:
        in_channels (int): Input channels (without the 2 coordinate channels).
        feat_channels (int): Channels of every conv.
        num_convs (int): Number of conv blocks.
        coord (bool): Append coordinate channels to the input. Defaults to False.
        deform (bool): Use mmcv's ``ModulatedDeformConv2dPack`` (DCNv2). Defaults to False.
        norm_cfg (dict, optional): Norm config, None for no norm. Defaults to GN with 32 groups.
        init_cfg (dict or list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 feat_channels: int,
                 num_convs: int,
                 coord: bool = False,
                 deform: bool = False,
                 norm_cfg: OptConfigType = dict(type='GN', num_groups=32, requires_grad=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.coord = coord
        self.deform = deform
        conv_cfg = dict(type='DCNv2', deform_groups=1) if deform else None
        self.layers = nn.Sequential(*[
            ConvModule(
                (in_channels + 2 * coord) if i == 0 else feat_channels,
                feat_channels,
                kernel_size=3,
                stride=1,
                padding=1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=dict(type='ReLU')) for i in range(num_convs)
        ])
        reset_to_release_init(self.layers)

    def init_weights(self) -> None:
        """Run mmengine's init, then restore the release's initialisation."""
        super().init_weights()
        if not self.init_cfg:
            reset_to_release_init(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): shape (B, C_in, H, W). Returns: Tensor: shape (B, C, H, W)."""
        if self.coord:
            x = add_coord_channels(x)
        return self.layers(x)


@MODELS.register_module()
class PanopticFCNFeatureEncoder(BaseModule):
    """Semantic-FPN fusion of P2-P5 to stride 4, then the CoordConv feature encoder.

    Semantic FPN (Kirillov et al.): each level goes through mmdet's ``ConvUpsample``,
    max(1, log2(stride / 4)) blocks of [conv3x3, GN, ReLU, x2 bilinear upsampling unless already
    at stride 4]; the maps are summed. ConvModule's default kaiming-normal (fan-out) init is the
    release's ``c2_msra_fill``. The encoder then appends coordinates and applies ``num_convs`` x
    [conv3x3, ReLU] without norm (a ReLU follows the last conv too), giving the high-resolution
    feature F whose dot products with the kernels are the mask logits (``docs/method.md``).

    Args:
        in_channels (int): Channels of the pyramid levels. Defaults to 256.
        in_strides (Sequence[int]): Strides of the levels used (P2-P5). Defaults to (4, 8, 16, 32).
        fpn_channels (int): Channels of the semantic-FPN convs. Defaults to 256.
        out_channels (int): Embedding dimension C_e of F (FEATURE_ENCODER.CONVS_DIM: 64 in the
            release's defaults, 256 in its Cityscapes and Vistas configs). Defaults to 256.
        num_convs (int): Convs of the encoder. Defaults to 3.
        common_stride (int): Output stride. Defaults to 4.
        norm_cfg (dict): Norm of the semantic-FPN convs. Defaults to GN with 32 groups.
        init_cfg (dict or list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 256,
                 in_strides: Sequence[int] = (4, 8, 16, 32),
                 fpn_channels: int = 256,
                 out_channels: int = 256,
                 num_convs: int = 3,
                 common_stride: int = 4,
                 norm_cfg: OptConfigType = dict(type='GN', num_groups=32, requires_grad=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_strides = tuple(in_strides)
        self.common_stride = common_stride
        self.out_channels = out_channels
        self.scale_heads = nn.ModuleList()
        for stride in self.in_strides:
            if stride < common_stride or stride & (stride - 1):
                raise ValueError('PanopticFCNFeatureEncoder: in_strides must be powers of 2 not '
                                 f'below common_stride={common_stride}, got {self.in_strides}')
            num_upsample = int(math.log2(stride) - math.log2(common_stride))
            self.scale_heads.append(
                ConvUpsample(
                    in_channels,
                    fpn_channels,
                    num_layers=max(1, num_upsample),
                    num_upsample=num_upsample,
                    norm_cfg=norm_cfg,
                    act_cfg=dict(type='ReLU')))
        self.encoder = ConvNormReLUStack(
            fpn_channels, out_channels, num_convs, coord=True, deform=False, norm_cfg=None)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Fuse the levels and encode.

        Args:
            feats (Sequence[Tensor]): Levels at ``in_strides``, shapes (B, C, H/s, W/s).

        Returns:
            Tensor: F, shape (B, C_e, H/4, W/4).
        """
        if len(feats) != len(self.scale_heads):
            raise ValueError(f'PanopticFCNFeatureEncoder expects {len(self.scale_heads)} levels '
                             f'(strides {self.in_strides}), got {len(feats)}')
        x = self.scale_heads[0](feats[0])
        for head, feat in zip(self.scale_heads[1:], feats[1:]):
            x = x + head(feat)
        return self.encoder(x)


class LevelConvHead(BaseModule):
    """A conv stack applied to each pyramid level, the trunk of the position and kernel heads.

    Args:
        in_channels (int): Channels of the pyramid levels. Defaults to 256.
        feat_channels (int): Channels of the conv stack. Defaults to 256.
        num_convs (int): Number of [conv, GN, ReLU] blocks. Defaults to 3.
        deform (bool): Modulated deformable convs. Defaults to False.
        coord (bool): CoordConv input. Defaults to False.
        norm_cfg (dict): Norm config. Defaults to GN with 32 groups.
        init_cfg (dict or list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 256,
                 feat_channels: int = 256,
                 num_convs: int = 3,
                 deform: bool = False,
                 coord: bool = False,
                 norm_cfg: OptConfigType = dict(type='GN', num_groups=32, requires_grad=True),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.feat_channels = feat_channels
        self.convs = ConvNormReLUStack(
            in_channels, feat_channels, num_convs, coord=coord, deform=deform, norm_cfg=norm_cfg)


@MODELS.register_module()
class PanopticFCNPositionHead(LevelConvHead):
    """Position head: thing center heatmaps and stuff region maps, shared over levels.

    Args:
        num_things_classes (int): Center heatmap channels T. Defaults to 8.
        num_region_classes (int): Region map channels R. Defaults to 19.
        bias_value (float): Initial bias of both outputs (THING.BIAS_VALUE). Defaults to -2.19.
        deform (bool): Modulated deformable convs (POSITION_HEAD.DEFORM). Defaults to True.
        coord (bool): CoordConv input (POSITION_HEAD.COORD). Defaults to False.
        **kwargs: ``in_channels``, ``feat_channels``, ``num_convs``, ``norm_cfg`` and ``init_cfg``
            of :class:`LevelConvHead`.
    """

    def __init__(self,
                 num_things_classes: int = 8,
                 num_region_classes: int = 19,
                 bias_value: float = -2.19,
                 deform: bool = True,
                 coord: bool = False,
                 **kwargs) -> None:
        super().__init__(deform=deform, coord=coord, **kwargs)
        self.out_center = nn.Conv2d(self.feat_channels, num_things_classes, 3, padding=1)
        self.out_region = nn.Conv2d(self.feat_channels, num_region_classes, 3, padding=1)
        for layer in (self.out_center, self.out_region):
            nn.init.normal_(layer.weight, mean=0, std=0.01)
            nn.init.constant_(layer.bias, bias_value)

    def forward(self, x: Tensor) -> tuple:
        """Args: x (Tensor): one level, shape (B, C, Hl, Wl).

        Returns:
            tuple[Tensor]: Center logits (B, T, Hl, Wl) and region logits (B, R, Hl, Wl).
        """
        x = self.convs(x)
        return self.out_center(x), self.out_region(x)


@MODELS.register_module()
class PanopticFCNKernelHead(LevelConvHead):
    """Kernel head: CoordConv + conv stack + an output conv giving a kernel feature per position.

    Its kernel features have ``feat_channels`` (C_k) channels.

    Args:
        deform (bool): Modulated deformable convs (KERNEL_HEAD.DEFORM). Defaults to False.
        coord (bool): CoordConv input (KERNEL_HEAD.COORD). Defaults to True.
        **kwargs: ``in_channels``, ``feat_channels``, ``num_convs``, ``norm_cfg`` and ``init_cfg``
            of :class:`LevelConvHead`.
    """

    def __init__(self, deform: bool = False, coord: bool = True, **kwargs) -> None:
        super().__init__(deform=deform, coord=coord, **kwargs)
        self.out_channels = self.feat_channels
        self.out_conv = nn.Conv2d(self.feat_channels, self.feat_channels, 3, padding=1)
        nn.init.normal_(self.out_conv.weight, mean=0, std=0.01)
        nn.init.zeros_(self.out_conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): one level, shape (B, C, Hl, Wl). Returns: Tensor: (B, C_k, Hl, Wl)."""
        return self.out_conv(self.convs(x))


def embed_kernels(embed: nn.Conv2d, kernels: Tensor) -> Tensor:
    """Apply a 1x1-conv kernel generator to gathered kernel features.

    Args:
        embed (nn.Conv2d): The thing or stuff generator (1x1 conv C_k -> C_e).
        kernels (Tensor): Kernel features, shape (N, C_k).

    Returns:
        Tensor: Embeddings, shape (N, C_e).
    """
    # shape (N, C_k) -> (N, C_k, 1, 1) -> (N, C_e, 1, 1) -> (N, C_e)
    return embed(kernels[:, :, None, None]).flatten(1)


def masks_from_embeddings(embeds: Tensor, feat: Tensor) -> Tensor:
    """Mask logits as dot products of embeddings with the stride-4 feature.

    Args:
        embeds (Tensor): Shape (N, C_e).
        feat (Tensor): One image's F, shape (C_e, H/4, W/4).

    Returns:
        Tensor: Mask logits, shape (N, H/4 * W/4).
    """
    # shape (N, C_e) x (C_e, H/4 * W/4) -> (N, H/4 * W/4)
    return embeds @ feat.flatten(1)


__all__ = [
    'add_coord_channels', 'reset_to_release_init', 'ConvNormReLUStack', 'PanopticFCNFeatureEncoder',
    'PanopticFCNPositionHead', 'PanopticFCNKernelHead', 'embed_kernels', 'masks_from_embeddings'
]
