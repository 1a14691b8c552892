# Copyright (c) mmibs contributors. All rights reserved.
"""Panoptic FCN inference after candidate extraction (``docs/method.md``, inference steps 3-5).

Pure functions (kernel fusion, thing mask scoring, panoptic composition) testable without a
model, plus :class:`PanopticFCNFusionHead` that chains them per image and returns mmdet's result
contract (``pan_results`` :obj:`PixelData`, ``ins_results`` :obj:`InstanceData`).

Shape shorthand: N thing candidates, S stuff candidates, C_e embedding channels, H/4 x W/4 the
(padded) stride-4 map, H x W the output size.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import SampleList
from mmdet.structures.mask import mask2bbox
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from mmibs.registry import MODELS
from ..task_modules.panoptic_fcn_target_generator import region_channel_labels

TIE_BREAKS = ('release', 'label')


def stuff_argmax_order(channels: Tensor, num_things_classes: int, stuff_mode: str,
                       tie_break: str) -> Tensor:
    """Order in which the stuff map's argmax sees the fused region channels.

    ``torch.argmax`` returns the first of tied maxima, so the order decides exact ties.
    ``'release'``: the release's channel order. With ``'all_classes'`` the release's channel is
    the Cityscapes trainId (stuff 0-10 before things 11-18), so the stuff channels come first,
    then the thing channels, each in label order; with ``'with_thing'`` / ``'stuff_only'`` the
    release's order is the region-channel order. ``'label'``: region-channel (= label) order,
    things first with ``'all_classes'``, so a stuff/thing tie goes to the thing channel, which
    paints nothing (the pixel stays void unless a thing covers it): mmibs' earlier behaviour.

    Args:
        channels (Tensor): Sorted unique region channels, shape (U, ).
        num_things_classes (int): T.
        stuff_mode (str): 'all_classes', 'with_thing' or 'stuff_only'.
        tie_break (str): 'release' or 'label'.

    Returns:
        Tensor: A permutation of ``range(U)``, shape (U, ), long.
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f'tie_break must be one of {TIE_BREAKS}, got {tie_break!r}')
    if tie_break == 'label' or stuff_mode != 'all_classes':
        return torch.arange(len(channels), device=channels.device)
    is_thing = (channels < num_things_classes).long()
    # stable: stuff (key 0) before things (key 1), label order inside each group
    return torch.sort(is_thing, stable=True).indices


def fuse_thing_kernels(embeds: Tensor,
                       labels: Tensor,
                       scores: Tensor,
                       similarity_thr: float,
                       class_specific: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """Class-aware kernel fusion by cosine similarity (release ``ThingGenerator.kernel_fusion``).

    Candidates come sorted by descending score. Candidate i claims every j >= i with cosine
    similarity >= ``similarity_thr`` (and, if ``class_specific``, the same label). i leads a group
    unless an earlier candidate claimed it; its group is the candidates it claims that no earlier
    candidate claimed. A group's embedding is the mean of its members' embeddings and it keeps
    its leader's label and score. A candidate claimed only by a candidate that itself was
    claimed earlier ends up in no group (the release's cumulative-sum rule, kept as is).

    Args:
        embeds (Tensor): Shape (N, C_e), sorted by descending score.
        labels (Tensor): Shape (N, ).
        scores (Tensor): Shape (N, ).
        similarity_thr (float): SIMILAR_THRES.
        class_specific (bool): Only fuse candidates of the same label. Defaults to True.

    Returns:
        tuple[Tensor]: Fused embeddings (G, C_e), labels (G, ) and scores (G, ).
    """
    if len(embeds) == 0:
        return embeds, labels, scores
    unit = embeds / embeds.norm(dim=1, keepdim=True).clamp(min=1e-8)
    # shape (N, C_e) x (C_e, N) -> (N, N)
    claims = (unit @ unit.t()) >= similarity_thr
    claims &= torch.ones_like(claims).triu()
    # a candidate always belongs to its own row (the release relies on sim_ii = 1)
    claims |= torch.eye(len(embeds), dtype=torch.bool, device=embeds.device)
    if class_specific:
        claims &= labels[:, None] == labels[None, :]
    # claimed at most once by rows 0..i, column-wise
    first_claim = claims.float().cumsum(dim=0) < 2
    leaders = first_claim.diagonal()
    groups = (claims & first_claim)[leaders].to(embeds.dtype)
    # shape (G, N) x (N, C_e) -> (G, C_e)
    fused = groups @ embeds / groups.sum(1, keepdim=True)
    return fused, labels[leaders], scores[leaders]


def fuse_stuff_kernels(embeds: Tensor, channels: Tensor,
                       scores: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Average the embeddings and scores of each region channel over levels.

    Args:
        embeds (Tensor): Shape (S, C_e).
        channels (Tensor): Region channels, shape (S, ).
        scores (Tensor): Shape (S, ).

    Returns:
        tuple[Tensor]: Embeddings (U, C_e), sorted unique channels (U, ) and scores (U, ).
    """
    unique = torch.unique(channels)
    # shape (U, S): membership of each candidate in each unique channel
    members = (unique[:, None] == channels[None, :]).to(embeds.dtype)
    count = members.sum(1, keepdim=True)
    return members @ embeds / count, unique, (members @ scores[:, None] / count)[:, 0]


def score_thing_masks(probs: Tensor, scores: Tensor, mask_thr: float) -> Tuple[Tensor, Tensor]:
    """Binary masks and mask-quality rescoring (release ``process_inst``).

    Args:
        probs (Tensor): Mask probabilities, shape (N, H, W).
        scores (Tensor): Center scores, shape (N, ).
        mask_thr (float): INST_THRES.

    Returns:
        tuple[Tensor]: Masks (N, H, W) bool and scores x mean probability inside the mask (N, ).
    """
    masks = probs > mask_thr
    area = masks.flatten(1).sum(1).float() + 1e-6
    quality = (probs * masks).flatten(1).sum(1) / area
    return masks, scores * quality


def compose_panoptic(thing_masks: Tensor,
                     thing_labels: Tensor,
                     thing_scores: Tensor,
                     stuff_map: Optional[Tensor],
                     channel_labels: Tensor,
                     num_classes: int,
                     score_thr: float = 0.2,
                     overlap_thr: float = 0.5,
                     stuff_area_limit: int = 2048) -> Tensor:
    """Paint things, then stuff, into one panoptic map (release ``combine_thing_and_stuff``).

    Things in the given (descending score) order, only if score >= ``score_thr``; a thing with no
    pixels or with more than ``overlap_thr`` of its mask already taken is skipped, otherwise its
    free pixels are painted. Then each stuff region of ``stuff_map`` whose channel paints a class
    (``channel_labels`` >= 0) fills its free pixels if they number at least
    ``stuff_area_limit``.

    Args:
        thing_masks (Tensor): Shape (N, H, W), bool.
        thing_labels (Tensor): Shape (N, ).
        thing_scores (Tensor): Shape (N, ), descending.
        stuff_map (Tensor, optional): Argmax region channel per pixel, shape (H, W); None when
            there is no stuff candidate.
        channel_labels (Tensor): Class painted by each region channel, -1 for none, shape (R, ).
        num_classes (int): Number of classes; also the VOID value.
        score_thr (float): COMBINE.INST_THRESH. Defaults to 0.2.
        overlap_thr (float): COMBINE.OVERLAP_THRESH. Defaults to 0.5.
        stuff_area_limit (int): COMBINE.STUFF_AREA_LIMIT, in output pixels. Defaults to 2048.

    Returns:
        Tensor: Shape (H, W), int32: ``label + instance_id * INSTANCE_OFFSET`` for things
        (instance ids from 1), ``label`` for stuff, ``num_classes`` for void.
    """
    size = thing_masks.shape[-2:] if stuff_map is None else stuff_map.shape
    device = thing_masks.device
    panoptic = torch.full(tuple(size), num_classes, dtype=torch.int32, device=device)
    taken = torch.zeros(tuple(size), dtype=torch.bool, device=device)
    instance_id = 1
    for mask, label, score in zip(thing_masks, thing_labels.tolist(), thing_scores.tolist()):
        if score < score_thr:
            continue
        area = int(mask.sum())
        if area == 0 or int((mask & taken).sum()) / area > overlap_thr:
            continue
        free = mask & ~taken
        panoptic[free] = label + instance_id * INSTANCE_OFFSET
        taken |= free
        instance_id += 1
    if stuff_map is None:
        return panoptic
    for channel in torch.unique(stuff_map).tolist():
        label = int(channel_labels[channel])
        if label < 0:
            continue
        free = (stuff_map == channel) & ~taken
        if int(free.sum()) < stuff_area_limit:
            continue
        panoptic[free] = label
        taken |= free
    return panoptic


def resize_to_output(maps: Tensor, stride: int, img_shape: Tuple[int, int],
                     out_shape: Tuple[int, int]) -> Tensor:
    """Upsample stride-4 maps x``stride``, crop the padding, resize to the output size.

    Args:
        maps (Tensor): Shape (N, H/4, W/4).
        stride (int): Common stride.
        img_shape (tuple[int]): Unpadded input (h, w).
        out_shape (tuple[int]): Output (H, W).

    Returns:
        Tensor: Shape (N, H, W).
    """
    maps = F.interpolate(maps[None], scale_factor=stride, mode='bilinear', align_corners=False)
    maps = maps[..., :img_shape[0], :img_shape[1]]
    if tuple(maps.shape[-2:]) != tuple(out_shape):
        maps = F.interpolate(maps, size=out_shape, mode='bilinear', align_corners=False)
    return maps[0]


@MODELS.register_module()
class PanopticFCNFusionHead(BaseModule):
    """Kernel fusion, mask generation and panoptic composition of Panoptic FCN.

    Args:
        num_things_classes (int): Defaults to 8.
        num_stuff_classes (int): Defaults to 11.
        stuff_mode (str): As :class:`PanopticFCNHead`. Defaults to 'all_classes'.
        common_stride (int): Stride of the mask features. Defaults to 4.
        tie_break (str): Exact ties of the stuff argmax: 'release' (the release's channel order:
            with 'all_classes' stuff before things, :func:`stuff_argmax_order`) or 'label'
            (things first, mmibs' earlier behaviour). Defaults to 'release'.
        test_cfg (dict, optional): ``similarity_thr`` (SIMILAR_THRES, 0.97 Cityscapes),
            ``class_specific_fusion`` (True), ``mask_thr`` (INST_THRES, 0.5),
            ``instance_score_thr`` (0.05), ``max_per_img`` (TOP_NUM, 200),
            ``panoptic_score_thr`` (COMBINE.INST_THRESH, 0.2), ``overlap_thr``
            (COMBINE.OVERLAP_THRESH, 0.5), ``stuff_area_limit`` (COMBINE.STUFF_AREA_LIMIT, 2048),
            ``panoptic_on`` (True) and ``instance_on`` (True).
        init_cfg (dict or list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 num_things_classes: int = 8,
                 num_stuff_classes: int = 11,
                 stuff_mode: str = 'all_classes',
                 common_stride: int = 4,
                 tie_break: str = 'release',
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        self.stuff_mode = stuff_mode
        if tie_break not in TIE_BREAKS:
            raise ValueError(f'PanopticFCNFusionHead: tie_break must be one of {TIE_BREAKS}, '
                             f'got {tie_break!r}')
        self.tie_break = tie_break
        self.common_stride = common_stride
        self.register_buffer(
            'channel_labels',
            region_channel_labels(num_things_classes, num_stuff_classes, stuff_mode),
            persistent=False)
        self.test_cfg = dict(test_cfg or {})

    def loss(self, **kwargs) -> dict:
        """No training loss."""
        return dict()

    def _things(self, cand: dict, img_shape: tuple,
                out_shape: tuple) -> Tuple[Tensor, Tensor, Tensor]:
        """Fused, scored, filtered thing masks at the output size, by descending score."""
        cfg = self.test_cfg
        mask_thr = cfg.get('mask_thr', 0.5)
        embeds, labels, scores = fuse_thing_kernels(cand['thing_embeds'], cand['thing_labels'],
                                                    cand['thing_scores'],
                                                    cfg.get('similarity_thr', 0.97),
                                                    cfg.get('class_specific_fusion', True))
        feat = cand['mask_feat']
        # shape (N, C_e) x (C_e, H/4 * W/4) -> (N, H/4, W/4)
        probs = (embeds @ feat.flatten(1)).sigmoid().view(-1, *feat.shape[-2:])
        _, scores = score_thing_masks(probs, scores, mask_thr)
        order = scores.argsort(descending=True)
        order = order[scores[order] >= cfg.get('instance_score_thr', 0.05)]
        order = order[:cfg.get('max_per_img', 200)]
        if len(order) == 0:
            return feat.new_zeros((0, *out_shape), dtype=torch.bool), labels[:0], scores[:0]
        # full-size float maps of up to TOP_NUM candidates are large (1.6 GB for 200 at
        # 1024 x 2048): resize and threshold a few at a time
        masks = torch.cat([
            resize_to_output(chunk, self.common_stride, img_shape, out_shape) > mask_thr
            for chunk in probs[order].split(16)
        ])
        return masks, labels[order], scores[order]

    def _stuff_map(self, cand: dict, img_shape: tuple, out_shape: tuple) -> Optional[Tensor]:
        """Argmax region channel per output pixel over the fused stuff kernels, or None."""
        if len(cand['stuff_embeds']) == 0:
            return None
        embeds, channels, _ = fuse_stuff_kernels(cand['stuff_embeds'], cand['stuff_channels'],
                                                 cand['stuff_scores'])
        order = stuff_argmax_order(channels, self.num_things_classes, self.stuff_mode,
                                   self.tie_break)
        embeds, channels = embeds[order], channels[order]
        feat = cand['mask_feat']
        # shape (U, C_e) x (C_e, H/4 * W/4) -> (U, H/4, W/4)
        probs = (embeds @ feat.flatten(1)).sigmoid().view(-1, *feat.shape[-2:])
        probs = resize_to_output(probs, self.common_stride, img_shape, out_shape)
        return channels[probs.argmax(0)]

    def predict(self,
                candidates: List[dict],
                batch_data_samples: SampleList,
                rescale: bool = True) -> List[dict]:
        """Results of every image.

        Args:
            candidates (list[dict]): From :meth:`PanopticFCNHead.predict_by_feat`.
            batch_data_samples (list[:obj:`DetDataSample`]): With ``img_shape`` and
                ``ori_shape`` in their metainfo.
            rescale (bool): Return results at ``ori_shape`` (else at ``img_shape``).
                Defaults to True.

        Returns:
            list[dict]: ``pan_results`` (:obj:`PixelData` with ``sem_seg`` (1, H, W)) and
            ``ins_results`` (:obj:`InstanceData` with ``masks``, ``labels``, ``scores``,
            ``bboxes``), each when switched on.
        """
        cfg = self.test_cfg
        results = []
        for cand, sample in zip(candidates, batch_data_samples):
            img_shape = tuple(sample.metainfo['img_shape'][:2])
            out_shape = tuple(sample.metainfo['ori_shape'][:2]) if rescale else img_shape
            masks, labels, scores = self._things(cand, img_shape, out_shape)
            result = dict()
            if cfg.get('panoptic_on', True):
                panoptic = compose_panoptic(masks, labels, scores,
                                            self._stuff_map(cand, img_shape, out_shape),
                                            self.channel_labels, self.num_classes,
                                            cfg.get('panoptic_score_thr', 0.2),
                                            cfg.get('overlap_thr', 0.5),
                                            cfg.get('stuff_area_limit', 2048))
                result['pan_results'] = PixelData(sem_seg=panoptic[None])
            if cfg.get('instance_on', True):
                result['ins_results'] = InstanceData(
                    masks=masks, labels=labels, scores=scores, bboxes=mask2bbox(masks))
            results.append(result)
        return results
