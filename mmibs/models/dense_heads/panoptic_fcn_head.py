# Copyright (c) mmibs contributors. All rights reserved.
"""Loss and candidate plumbing of Panoptic FCN (Li et al., CVPR 2021) with optional IBS.

Follows the release (PanopticFCN-IBS ``panopticfcn/panoptic_seg.py``) as ``docs/method.md``
describes it. Only real (instance, level) and (class, level) slots are gathered, so the release's
padding to TENSOR_DIM and to the per-level batch maximum (which never reaches a loss) is gone.

Shape shorthand: B images, L kernel levels, T thing classes, R region classes, K kernels per
instance (POS_NUM), M gathered thing kernels of one image (sum over its slots of K), C_k kernel
features, C_e embeddings, H/4 x W/4 the stride-4 map, Hl x Wl one level.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig, reduce_mean
from mmengine.model import BaseModule
from torch import Tensor

from mmibs.registry import MODELS, TASK_UTILS
from ..layers.panoptic_fcn_layers import embed_kernels, masks_from_embeddings
from ..task_modules.panoptic_fcn_target_generator import num_region_channels

STUFF_POOLINGS = ('full_area', 'masked_mean')


def pool_region_kernels(region_masks: Tensor, kernel_map: Tensor, pooling: str) -> Tensor:
    """Stuff kernel of each region: kernel features summed over the region, then normalised.

    ``'full_area'`` divides by the whole level area (the release's ``adaptive_avg_pool2d`` of the
    masked map, kept: ``docs/release_differences.md``); ``'masked_mean'`` divides by the
    region's own area.

    Args:
        region_masks (Tensor): Shape (S, Hl, Wl).
        kernel_map (Tensor): Shape (C_k, Hl, Wl).
        pooling (str): 'full_area' or 'masked_mean'.

    Returns:
        Tensor: Shape (S, C_k).
    """
    if pooling == 'full_area':
        # the release's op, adaptive_avg_pool2d of the masked map, so that float32 sums run in
        # its order (an einsum differs by ~1e-7 and flips exact argmax ties of the stuff map);
        # one region at a time bounds the (C_k, Hl, Wl) product's memory
        if len(region_masks) == 0:
            return kernel_map.new_zeros((0, kernel_map.shape[0]))
        # shape (1, 1, Hl, Wl) x (1, C_k, Hl, Wl) -> (1, C_k, 1, 1) -> (1, C_k), per region
        return torch.cat([
            F.adaptive_avg_pool2d(mask[None, None] * kernel_map[None], 1).flatten(1)
            for mask in region_masks
        ])
    # shape (S, Hl, Wl) x (C_k, Hl, Wl) -> (S, C_k)
    summed = torch.einsum('shw,chw->sc', region_masks, kernel_map)
    return summed / region_masks.flatten(1).sum(1, keepdim=True).clamp(min=1)


def topk_guided_kernels(center_logits: Tensor, kernel_map: Tensor, masks4: Tensor, labels: Tensor,
                        num_kernels: int, guidance_thr: float) -> Tuple[Tensor, Tensor]:
    """Training kernels of the instances of one level (``docs/method.md``).

    Each instance's class heatmap (sigmoid), restricted to pixels where its mask shrunk to the
    level exceeds ``guidance_thr``, picks its top-K positions; the kernel features there are its
    K kernels and the K probabilities their weights.

    Args:
        center_logits (Tensor): Shape (T, Hl, Wl).
        kernel_map (Tensor): Shape (C_k, Hl, Wl).
        masks4 (Tensor): Stride-4 soft masks, shape (N, H/4, W/4).
        labels (Tensor): Thing labels, shape (N, ).
        num_kernels (int): K (POS_NUM); capped at Hl * Wl for tiny levels.
        guidance_thr (float): Mask value above which a position may be picked (0.1).

    Returns:
        tuple[Tensor]: Kernels (N, K', C_k) and weights (N, K'), K' = min(K, Hl * Wl).
    """
    hl, wl = kernel_map.shape[-2:]
    # shape (N, H/4, W/4) -> (N, Hl, Wl)
    shrunk = F.interpolate(masks4[None], size=(hl, wl), mode='bilinear', align_corners=False)[0]
    probs = center_logits[labels].sigmoid()
    guidance = torch.where(shrunk > guidance_thr, probs, torch.zeros_like(probs))
    weights, index = guidance.flatten(1).topk(min(num_kernels, hl * wl), dim=1)
    # shape (C_k, Hl * Wl) -> (N * K', C_k) -> (N, K', C_k)
    kernels = kernel_map.flatten(1)[:, index.flatten()].t().reshape(*index.shape, -1)
    return kernels, weights


@MODELS.register_module()
class PanopticFCNHead(BaseModule):
    """Panoptic FCN head: kernel generator, training losses and inference candidates.

    Loss keys: ``loss_pos_th`` (focal on center heatmaps / N_th), ``loss_pos_st`` (focal on
    region maps, pixel mean per (image, class) / B), ``loss_seg_th`` (weighted dice / N_th),
    ``loss_seg_st`` (dice / N_st) and, when ``loss_ibs`` is set, ``loss_ibs_th``
    (``docs/method.md``).
    N_th counts (instance, level) slots, N_st (class, level) slots, both on this process unless
    ``sync_normalizers``.

    Args:
        num_things_classes (int): T. Defaults to 8 (Cityscapes).
        num_stuff_classes (int): Stuff classes. Defaults to 11 (Cityscapes).
        stuff_mode (str): Region head classes: 'all_classes' (Cityscapes), 'with_thing'
            (Vistas) or 'stuff_only'. Defaults to 'all_classes'.
        head_module (dict): Config of :class:`PanopticFCNHeadModule` (class counts set here).
        loss_pos_th (dict): Center heatmap loss. Defaults to sigmoid focal (0.25, 2), weight 1.
        loss_pos_st (dict): Region map loss. Defaults to sigmoid focal (0.25, 2), weight 1.
        loss_seg_th (dict): Thing mask loss. Defaults to WeightedDiceLoss, weight 4 (Cityscapes
            SEGMENT).
        loss_seg_st (dict): Stuff mask loss. Defaults to WeightedDiceLoss, weight 4.
        loss_ibs (dict, optional): IBS loss on every thing kernel, e.g.
            ``dict(type='IBSLoss', partner='pair', num_points=None, loss_weight=4.0)`` with
            loss_weight = SEGMENT x IBS_WEIGHT; None switches IBS off. Defaults to None.
        detach_center_weights (bool): Detach the top-K center scores used as mask-loss weights.
            The release does not (``docs/release_differences.md``). Defaults to False.
        sync_normalizers (bool): Average N_th, N_st and B over processes. The release does not.
            Defaults to False.
        stuff_pooling (str): 'full_area' (release) or 'masked_mean'. Defaults to 'full_area'.
        train_cfg (dict, optional): ``target_generator`` (config of
            :class:`PanopticFCNTargetGenerator`), ``num_kernels`` (POS_NUM, 7) and
            ``guidance_thr`` (0.1).
        test_cfg (dict, optional): ``center_pool_sizes`` ((3, 3, 3, 5, 5)), ``thing_score_thr``
            (THING.THRES), ``max_candidates`` (THING.TOP_NUM; half of it per level) and
            ``stuff_score_thr`` (STUFF.THRES); the fusion head reads the rest.
        init_cfg (dict or list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 num_things_classes: int = 8,
                 num_stuff_classes: int = 11,
                 stuff_mode: str = 'all_classes',
                 head_module: ConfigType = dict(type='PanopticFCNHeadModule'),
                 loss_pos_th: ConfigType = dict(
                     type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                 loss_pos_st: ConfigType = dict(
                     type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                 loss_seg_th: ConfigType = dict(type='WeightedDiceLoss', loss_weight=4.0),
                 loss_seg_st: ConfigType = dict(type='WeightedDiceLoss', loss_weight=4.0),
                 loss_ibs: OptConfigType = None,
                 detach_center_weights: bool = False,
                 sync_normalizers: bool = False,
                 stuff_pooling: str = 'full_area',
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if stuff_pooling not in STUFF_POOLINGS:
            raise ValueError(f'PanopticFCNHead: stuff_pooling must be one of {STUFF_POOLINGS}, '
                             f'got {stuff_pooling!r}')
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        self.stuff_mode = stuff_mode
        self.num_region_classes = num_region_channels(num_things_classes, num_stuff_classes,
                                                      stuff_mode)
        head_module = dict(head_module)
        head_module.update(
            num_things_classes=num_things_classes, num_region_classes=self.num_region_classes)
        self.head_module = MODELS.build(head_module)
        self.loss_pos_th = MODELS.build(loss_pos_th)
        self.loss_pos_st = MODELS.build(loss_pos_st)
        self.loss_seg_th = MODELS.build(loss_seg_th)
        self.loss_seg_st = MODELS.build(loss_seg_st)
        self.loss_ibs = MODELS.build(loss_ibs) if loss_ibs else None
        self.detach_center_weights = detach_center_weights
        self.sync_normalizers = sync_normalizers
        self.stuff_pooling = stuff_pooling
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})
        self.num_kernels = self.train_cfg.get('num_kernels', 7)
        self.guidance_thr = self.train_cfg.get('guidance_thr', 0.1)
        generator = dict(
            self.train_cfg.get('target_generator', dict(type='PanopticFCNTargetGenerator')))
        generator.update(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            stuff_mode=stuff_mode)
        self.target_generator = TASK_UTILS.build(generator)

    def forward(self, x: Sequence[Tensor]) -> tuple:
        """Network forward; see :meth:`PanopticFCNHeadModule.forward`."""
        return self.head_module(x)

    # ------------------------------------------------------------------ training
    def loss(self, x: Sequence[Tensor], batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Forward the head and compute the losses.

        Args:
            x (Sequence[Tensor]): Neck outputs (P2..P7).
            batch_data_samples (list[:obj:`DetDataSample`]): With ``gt_instances`` and
                ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: The loss components.
        """
        mask_feat, center_logits, region_logits, kernel_maps = self(x)
        stride = self.target_generator.common_stride
        pad_shape = tuple(batch_data_samples[0].metainfo.get(
            'batch_input_shape', (mask_feat.shape[-2] * stride, mask_feat.shape[-1] * stride)))
        # targets in the parameters' dtype: float64 models get float64 targets, AMP (float16
        # activations, float32 parameters) keeps float32 targets
        dtype = self.head_module.thing_embed.weight.dtype
        targets = [
            self.target_generator(
                sample,
                pad_shape,
                tuple(mask_feat.shape[-2:]), [tuple(k.shape[-2:]) for k in kernel_maps],
                mask_feat.device,
                dtype=dtype) for sample in batch_data_samples
        ]
        return self.loss_by_feat(mask_feat, center_logits, region_logits, kernel_maps, targets)

    def _normalizer(self, value: float, device: torch.device) -> float:
        """A loss divisor, averaged over processes if ``sync_normalizers``, at least 1."""
        value = torch.tensor(float(value), device=device)
        if self.sync_normalizers:
            value = reduce_mean(value)
        return max(float(value), 1.0)

    def _thing_kernels_single(self, center_logits: List[Tensor], kernel_maps: List[Tensor],
                              levels: List[dict]) -> Tuple[Tensor, Tensor, Tensor, int]:
        """Gathered thing kernels of one image over all levels.

        Returns:
            tuple: kernels (M, C_k), normalised weights (M, ), mask targets (M, H/4 * W/4) and
            the number of (instance, level) slots.
        """
        kernels, weights, targets, num_slots = [], [], [], 0
        for center, kmap, level in zip(center_logits, kernel_maps, levels):
            masks4, labels = level['thing_masks'], level['thing_labels']
            if len(labels) == 0:
                continue
            level_kernels, level_weights = topk_guided_kernels(center, kmap, masks4, labels,
                                                               self.num_kernels, self.guidance_thr)
            if self.detach_center_weights:
                level_weights = level_weights.detach()
            level_weights = level_weights / level_weights.sum(1, keepdim=True).clamp(min=1e-8)
            k = level_weights.shape[1]
            kernels.append(level_kernels.flatten(0, 1))
            weights.append(level_weights.flatten())
            targets.append(masks4.flatten(1).repeat_interleave(k, dim=0))
            num_slots += len(labels)
        if not kernels:
            kmap = kernel_maps[0]
            hw = levels[0]['thing_masks'].shape[-2] * levels[0]['thing_masks'].shape[-1]
            return kmap.new_zeros((0, kmap.shape[0])), kmap.new_zeros((0, )), \
                kmap.new_zeros((0, hw)), 0
        return torch.cat(kernels), torch.cat(weights), torch.cat(targets), num_slots

    def _stuff_kernels_single(self, kernel_maps: List[Tensor],
                              levels: List[dict]) -> Tuple[Tensor, Tensor]:
        """Pooled stuff kernels of one image over all levels: (S, C_k) and targets (S, H/4*W/4)."""
        kernels = [
            pool_region_kernels(level['stuff_region_masks'], kmap, self.stuff_pooling)
            for kmap, level in zip(kernel_maps, levels)
        ]
        targets = [level['stuff_masks'].flatten(1) for level in levels]
        return torch.cat(kernels), torch.cat(targets)

    def loss_by_feat(self, mask_feat: Tensor, center_logits: List[Tensor],
                     region_logits: List[Tensor], kernel_maps: List[Tensor],
                     targets: List[List[dict]]) -> Dict[str, Tensor]:
        """Losses from head outputs and per-image, per-level targets.

        Args:
            mask_feat (Tensor): F, shape (B, C_e, H/4, W/4).
            center_logits (list[Tensor]): Per level (B, T, Hl, Wl).
            region_logits (list[Tensor]): Per level (B, R, Hl, Wl).
            kernel_maps (list[Tensor]): Per level (B, C_k, Hl, Wl).
            targets (list[list[dict]]): Per image, per level, from the target generator.

        Returns:
            dict[str, Tensor]: The loss components.
        """
        num_imgs = mask_feat.shape[0]
        module = self.head_module
        thing_logits, thing_weights, thing_targets, thing_embeds = [], [], [], []
        stuff_logits, stuff_targets = [], []
        num_th = num_st = 0
        for i in range(num_imgs):
            kernels, weights, tgt, slots = self._thing_kernels_single([c[i] for c in center_logits],
                                                                      [k[i] for k in kernel_maps],
                                                                      targets[i])
            embeds = embed_kernels(module.thing_embed, kernels)
            thing_embeds.append(embeds)
            thing_logits.append(masks_from_embeddings(embeds, mask_feat[i]))
            thing_weights.append(weights)
            thing_targets.append(tgt)
            num_th += slots
            kernels, tgt = self._stuff_kernels_single([k[i] for k in kernel_maps], targets[i])
            stuff_logits.append(
                masks_from_embeddings(embed_kernels(module.stuff_embed, kernels), mask_feat[i]))
            stuff_targets.append(tgt)
            num_st += len(tgt)
        device = mask_feat.device
        norm_th = self._normalizer(num_th, device)
        norm_st = self._normalizer(num_st, device)
        norm_img = self._normalizer(num_imgs, device)

        loss_pos_th = sum(
            self.loss_pos_th(
                c, torch.stack([t[lvl]['center_heatmap'] for t in targets]), avg_factor=norm_th)
            for lvl, c in enumerate(center_logits))
        # the release averages over the pixels of each (image, class) map, sums, divides by B
        loss_pos_st = sum(
            self.loss_pos_st(
                r,
                torch.stack([t[lvl]['region_scores'] for t in targets]),
                avg_factor=norm_img * r.shape[-2] * r.shape[-1])
            for lvl, r in enumerate(region_logits))
        losses = dict(loss_pos_th=loss_pos_th, loss_pos_st=loss_pos_st)
        losses['loss_seg_th'] = self._masked_loss(self.loss_seg_th, thing_logits, thing_targets,
                                                  thing_weights, norm_th)
        losses['loss_seg_st'] = self._masked_loss(self.loss_seg_st, stuff_logits, stuff_targets,
                                                  None, norm_st)
        if self.loss_ibs is not None:
            # every thing kernel, weighted as in the dice loss, dense over F (docs/method.md)
            losses['loss_ibs_th'] = self.loss_ibs(
                thing_embeds, mask_feat, weights=thing_weights, avg_factor=norm_th)
        return losses

    @staticmethod
    def _masked_loss(loss_fn, logits: List[Tensor], targets: List[Tensor],
                     weights: Optional[List[Tensor]], avg_factor: float) -> Tensor:
        """A mask loss over the masks of every image; an exact zero in the graph when empty."""
        logits = torch.cat(logits)
        if len(logits) == 0:
            return logits.sum() * 0
        weight = torch.cat(weights) if weights is not None else None
        return loss_fn(logits, torch.cat(targets), weight=weight, avg_factor=avg_factor)

    # ----------------------------------------------------------------- inference
    def predict(self, x: Sequence[Tensor], batch_data_samples: SampleList) -> List[dict]:
        """Forward the head and extract the thing and stuff candidates of every image.

        Returns:
            list[dict]: See :meth:`predict_by_feat`.
        """
        return self.predict_by_feat(*self(x))

    @torch.no_grad()
    def _thing_candidates_level(self, center_logits: Tensor, kernel_map: Tensor,
                                pool_size: int) -> Tuple[Tensor, Tensor, Tensor]:
        """Center peaks of one level of one image (``docs/method.md``, inference step 1).

        Returns:
            tuple[Tensor]: Kernels (N, C_k), scores (N, ) and labels (N, ).
        """
        probs = center_logits.sigmoid()
        smoothed = F.avg_pool2d(probs[None], pool_size, stride=1, padding=(pool_size - 1) // 2)
        probs = (probs + smoothed[0]) / 2
        peaks = F.max_pool2d(probs[None], 3, stride=1, padding=1)[0] == probs
        probs = probs * peaks
        hw = probs.shape[-2] * probs.shape[-1]
        num = min(hw, self.test_cfg.get('max_candidates', 200) // 2)
        scores, index = probs.flatten().topk(num)
        keep = scores > self.test_cfg.get('thing_score_thr', 0.01)
        scores, index = scores[keep], index[keep]
        # shape (C_k, Hl * Wl) -> (N, C_k)
        kernels = kernel_map.flatten(1)[:, index % hw].t()
        return kernels, scores, index // hw

    @torch.no_grad()
    def _stuff_candidates_level(self, region_logits: Tensor,
                                kernel_map: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Stuff regions of one level of one image (``docs/method.md``, inference step 2).

        Returns:
            tuple[Tensor]: Kernels (S, C_k), scores (S, ) and region channels (S, ).
        """
        probs = region_logits.sigmoid()
        argmax = probs.argmax(0)
        channels, counts = torch.unique(argmax, return_counts=True)
        # shape (Hl, Wl) -> (S, Hl, Wl)
        regions = (argmax[None] == channels[:, None, None]).to(probs.dtype)
        scores = (probs[channels] * regions).flatten(1).sum(1) / counts
        keep = scores > self.test_cfg.get('stuff_score_thr', 0.1)
        kernels = pool_region_kernels(regions[keep], kernel_map, self.stuff_pooling)
        return kernels, scores[keep], channels[keep]

    @torch.no_grad()
    def predict_by_feat(self, mask_feat: Tensor, center_logits: List[Tensor],
                        region_logits: List[Tensor], kernel_maps: List[Tensor]) -> List[dict]:
        """Per-image candidates, levels combined, before kernel fusion.

        Returns:
            list[dict]: Per image: ``mask_feat`` (C_e, H/4, W/4); ``thing_embeds`` (N, C_e),
            ``thing_scores`` (N, ) in descending order and ``thing_labels`` (N, ); and
            ``stuff_embeds`` (S, C_e), ``stuff_scores`` (S, ) and ``stuff_channels`` (S, ), the
            region channels, one entry per (class, level).
        """
        pool_sizes = self.test_cfg.get('center_pool_sizes', (3, 3, 3, 5, 5))
        if len(pool_sizes) != len(center_logits):
            raise ValueError(f'test_cfg.center_pool_sizes has {len(pool_sizes)} entries for '
                             f'{len(center_logits)} kernel levels')
        module = self.head_module
        results = []
        for i in range(mask_feat.shape[0]):
            things = [
                self._thing_candidates_level(c[i], k[i], p)
                for c, k, p in zip(center_logits, kernel_maps, pool_sizes)
            ]
            stuff = [
                self._stuff_candidates_level(r[i], k[i])
                for r, k in zip(region_logits, kernel_maps)
            ]
            kernels, scores, labels = (torch.cat(parts) for parts in zip(*things))
            order = scores.argsort(descending=True)
            stuff_kernels, stuff_scores, stuff_channels = (torch.cat(p) for p in zip(*stuff))
            results.append(
                dict(
                    mask_feat=mask_feat[i],
                    thing_embeds=embed_kernels(module.thing_embed, kernels[order]),
                    thing_scores=scores[order],
                    thing_labels=labels[order],
                    stuff_embeds=embed_kernels(module.stuff_embed, stuff_kernels),
                    stuff_scores=stuff_scores,
                    stuff_channels=stuff_channels))
        return results
