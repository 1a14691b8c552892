# Copyright (c) mmibs contributors. All rights reserved.
"""Training targets of Panoptic FCN (``docs/method.md``, release ``panopticfcn/gt_generate.py``).

No parameters: it turns one mmdet panoptic data sample into per-level targets, in the floating
dtype it is given (the model's parameter dtype: float32, or float64 for parity checks).

Shape shorthand: N instances, T thing classes, R region classes, S present region classes,
H/4 x W/4 the (padded) stride-4 map, Hl x Wl one pyramid level, h x w the unpadded image.

Label conventions: mmdet contiguous labels, things in [0, T), stuff in [T, T + num_stuff);
``gt_sem_seg`` holds every class (things included, as mmdet's ``LoadPanopticAnnotations`` writes
it) with ``ignore_index`` on void. The region head's channels depend on ``stuff_mode``:

- ``'all_classes'`` (release Cityscapes, STUFF.ALL_CLASSES): R = T + num_stuff, channel = label.
- ``'with_thing'`` (release Vistas/COCO, STUFF.WITH_THING): R = 1 + num_stuff, channel 0 = any
  thing, channel 1 + s = stuff class s.
- ``'stuff_only'``: R = num_stuff, channel s = stuff class s; thing pixels carry no target.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.utils.gaussian_target import gaussian2D
from mmdet.structures.bbox import get_box_tensor
from mmdet.structures.mask import mask2bbox
from torch import Tensor

from mmibs.registry import TASK_UTILS
from mmibs.utils.checks import check_choice

STUFF_MODES = ('all_classes', 'with_thing', 'stuff_only')


def num_region_channels(num_things_classes: int, num_stuff_classes: int, stuff_mode: str) -> int:
    """Channels R of the region head for a ``stuff_mode``."""
    if stuff_mode not in STUFF_MODES:
        raise ValueError(f'stuff_mode must be one of {STUFF_MODES}, got {stuff_mode!r}')
    return {
        'all_classes': num_things_classes + num_stuff_classes,
        'with_thing': 1 + num_stuff_classes,
        'stuff_only': num_stuff_classes
    }[stuff_mode]


def region_channel_labels(num_things_classes: int, num_stuff_classes: int,
                          stuff_mode: str) -> Tensor:
    """Class label painted by each region channel at inference, -1 for channels never painted.

    Thing channels ('all_classes') and the merged thing channel ('with_thing') are skipped by the
    panoptic composition, as in the release's ``combine_thing_and_stuff``.

    Returns:
        Tensor: Shape (R, ), long.
    """
    t, s = num_things_classes, num_stuff_classes
    stuff = torch.arange(t, t + s)
    if stuff_mode == 'all_classes':
        return torch.cat([torch.full((t, ), -1), stuff])
    if stuff_mode == 'with_thing':
        return torch.cat([torch.full((1, ), -1), stuff])
    num_region_channels(t, s, stuff_mode)  # validates the mode
    return stuff


def cornernet_gaussian_radius(wh: Tensor, min_overlap: float) -> Tensor:
    """Gaussian radius of the original CornerNet code, as the release computes it.

    mmdet's ``gaussian_radius`` is the corrected formula (roots divided by 2a); the release keeps
    the original one (each root halved only), which gives radii several times larger. The
    smallest root, r3, normally decides. Written here to keep the release's heatmaps.

    Args:
        wh (Tensor): Box widths and heights at the level's scale, shape (N, 2).
        min_overlap (float): MIN_OVERLAP. Defaults in the release to 0.7.

    Returns:
        Tensor: Radii (float, not yet truncated), shape (N, ).
    """
    w, h = wh[:, 0], wh[:, 1]
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + torch.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + torch.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return torch.min(r1, torch.min(r2, r3))


def draw_gaussian_max(heatmap: Tensor, center: Tuple[int, int], radius: int,
                      sigma_factor: float) -> None:
    """Paint a Gaussian peak into ``heatmap`` in place, combining by max.

    mmdet's ``gen_gaussian_target`` fixes sigma = diameter / 6; the release uses
    sigma = diameter / GAUSSIAN_SIGMA with GAUSSIAN_SIGMA = 3, hence this variant.

    Args:
        heatmap (Tensor): One class channel, shape (Hl, Wl).
        center (tuple[int]): (x, y) on the level grid.
        radius (int): Radius r >= 0; the peak covers (2r + 1) x (2r + 1).
        sigma_factor (float): GAUSSIAN_SIGMA.
    """
    diameter = 2 * radius + 1
    gaussian = gaussian2D(
        radius, sigma=diameter / sigma_factor, dtype=heatmap.dtype, device=heatmap.device)
    x, y = center
    height, width = heatmap.shape
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return
    region = heatmap[y - top:y + bottom, x - left:x + right]
    patch = gaussian[radius - top:radius + bottom, radius - left:radius + right]
    torch.maximum(region, patch, out=region)


def downsample_to_canvas(maps: Tensor,
                         stride: int,
                         canvas: Tuple[int, int],
                         chunk: int = 32,
                         dtype: torch.dtype = torch.float32) -> Tensor:
    """Bilinearly shrink full-resolution maps by ``stride`` and paste them top-left on a canvas.

    The size is int(h / stride + 0.5), the release's rounding; the canvas is the padded stride-4
    map, zero outside the image.

    Args:
        maps (Tensor): Shape (N, h, w), any dtype.
        stride (int): Common stride (4).
        canvas (tuple[int]): (H/4, W/4).
        chunk (int): Maps interpolated at once (bounds the float copy's memory). Defaults to 32.
        dtype (torch.dtype): Floating dtype of the result. Defaults to torch.float32.

    Returns:
        Tensor: Maps of ``dtype``, shape (N, H/4, W/4).
    """
    n, h, w = maps.shape
    new_h, new_w = int(h / stride + 0.5), int(w / stride + 0.5)
    out = maps.new_zeros((n, *canvas), dtype=dtype)
    ph, pw = min(new_h, canvas[0]), min(new_w, canvas[1])
    for start in range(0, n, chunk):
        part = maps[start:start + chunk].to(dtype)
        # shape (n', h, w) -> (1, n', h/4, w/4)
        small = F.interpolate(
            part[None], size=(new_h, new_w), mode='bilinear', align_corners=False)[0]
        out[start:start + chunk, :ph, :pw] = small[:, :ph, :pw]
    return out


def mass_centers(masks: Tensor) -> Tensor:
    """Mean (x, y) of the non-zero pixels of each (soft) mask; NaN for empty masks.

    Args:
        masks (Tensor): Shape (N, H, W).

    Returns:
        Tensor: Shape (N, 2), the dtype of ``masks``, order (x, y).
    """
    nonzero = (masks > 0).to(masks.dtype)
    count = nonzero.flatten(1).sum(1)
    ys = torch.arange(masks.shape[1], dtype=masks.dtype, device=masks.device)
    xs = torch.arange(masks.shape[2], dtype=masks.dtype, device=masks.device)
    cy = (nonzero.sum(2) * ys).sum(1) / count
    cx = (nonzero.sum(1) * xs).sum(1) / count
    return torch.stack([cx, cy], dim=1)


@TASK_UTILS.register_module()
class PanopticFCNTargetGenerator:
    """Per-level thing and stuff targets of one image.

    Things: soft stride-4 masks; an instance goes to every level whose INSTANCE_SCALES range
    (inclusive) holds sqrt(box area); its center (mass center of the stride-4 mask, or box center)
    is rescaled to the level grid and truncated; a CornerNet Gaussian (original-code radius from
    the box size at the level, sigma = diameter / ``gaussian_sigma_factor``) is drawn by max into
    its class channel.
    Stuff: one-hot region classes (void all-zero), bilinearly shrunk to stride 4 (the dice
    target), then per level resized, clamped to 1 and zeroed below ``region_score_thr`` (the
    region score target);
    a class is present at a level when any positive score remains.

    Args:
        num_things_classes (int): T.
        num_stuff_classes (int): Number of stuff classes.
        stuff_mode (str): 'all_classes', 'with_thing' or 'stuff_only' (module docstring).
            Defaults to 'all_classes'.
        instance_scales (Sequence[tuple]): (min, max) sqrt box area in input pixels per level,
            P3..P7. Defaults to the release's Cityscapes values.
        min_overlap (float): MIN_OVERLAP of the Gaussian radius. Defaults to 0.7.
        gaussian_sigma_factor (float): GAUSSIAN_SIGMA. Defaults to 3.0.
        center_type (str): 'mass' (release default) or 'box'. Defaults to 'mass'.
        max_instances (int): TENSOR_DIM, the most instances one level may hold; more raises.
            Defaults to 150 (Cityscapes).
        region_score_thr (float): Region score targets below it are zeroed (hard-coded 0.5 in
            the release). Defaults to 0.5.
        common_stride (int): Stride of the mask targets. Defaults to 4.
        ignore_index (int): Void label of ``gt_sem_seg``. Defaults to 255.
    """

    def __init__(self,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 stuff_mode: str = 'all_classes',
                 instance_scales: Sequence[Tuple[float, float]] = ((1, 128), (64, 256), (128, 512),
                                                                   (256, 1024), (512, 2048)),
                 min_overlap: float = 0.7,
                 gaussian_sigma_factor: float = 3.0,
                 center_type: str = 'mass',
                 max_instances: int = 150,
                 region_score_thr: float = 0.5,
                 common_stride: int = 4,
                 ignore_index: int = 255) -> None:
        check_choice('PanopticFCNTargetGenerator', 'center_type', center_type, ('mass', 'box'))
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.stuff_mode = stuff_mode
        self.num_region_classes = num_region_channels(num_things_classes, num_stuff_classes,
                                                      stuff_mode)
        self.instance_scales = [tuple(s) for s in instance_scales]
        self.min_overlap = min_overlap
        self.gaussian_sigma_factor = gaussian_sigma_factor
        self.center_type = center_type
        self.max_instances = max_instances
        self.region_score_thr = region_score_thr
        self.common_stride = common_stride
        self.ignore_index = ignore_index
        self._label_to_channel = self._build_label_lookup()

    def _build_label_lookup(self) -> Tensor:
        """Region channel of every label value; R means dropped, -1 means invalid."""
        t, s, r = self.num_things_classes, self.num_stuff_classes, self.num_region_classes
        lookup = torch.full((max(256, self.ignore_index + 1, t + s), ), -1, dtype=torch.long)
        lookup[self.ignore_index] = r
        if self.stuff_mode == 'all_classes':
            lookup[:t + s] = torch.arange(t + s)
        elif self.stuff_mode == 'with_thing':
            lookup[:t] = 0
            lookup[t:t + s] = torch.arange(1, s + 1)
        else:
            lookup[:t] = r
            lookup[t:t + s] = torch.arange(s)
        return lookup

    def region_one_hot(self, sem_seg: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """Full-resolution region targets: one channel per region class, void all-zero.

        Args:
            sem_seg (Tensor): Labels, shape (h, w).
            dtype (torch.dtype): Floating dtype of the result. Defaults to torch.float32.

        Returns:
            Tensor: Shape (R, h, w), ``dtype``.
        """
        sem_seg = sem_seg.long()
        if sem_seg.numel() and (sem_seg.min() < 0 or sem_seg.max() >= len(self._label_to_channel)):
            raise ValueError(f'gt_sem_seg holds label {int(sem_seg.max())} outside the lookup of '
                             f'size {len(self._label_to_channel)}')
        channels = self._label_to_channel.to(sem_seg.device)[sem_seg]
        if (channels < 0).any():
            bad = torch.unique(sem_seg[channels < 0]).tolist()
            raise ValueError(f'gt_sem_seg holds labels {bad} that are neither classes (< '
                             f'{self.num_things_classes + self.num_stuff_classes}) nor '
                             f'ignore_index={self.ignore_index}')
        one_hot = F.one_hot(channels, num_classes=self.num_region_classes + 1)
        # shape (h, w, R + 1) -> (R, h, w): the extra void channel is dropped
        return one_hot.permute(2, 0, 1)[:self.num_region_classes].to(dtype)

    def _instance_boxes(self, gt_instances, masks: Tensor, dtype: torch.dtype) -> Tensor:
        """Boxes (x1, y1, x2, y2) of the instances: the data sample's, else the masks' extent."""
        if 'bboxes' in gt_instances and len(gt_instances.bboxes) == len(masks):
            return get_box_tensor(gt_instances.bboxes).to(device=masks.device, dtype=dtype)
        return mask2bbox(masks.bool()).to(dtype)

    def thing_targets(self,
                      gt_instances,
                      pad_shape: Tuple[int, int],
                      canvas: Tuple[int, int],
                      level_shapes: Sequence[Tuple[int, int]],
                      device: torch.device,
                      dtype: torch.dtype = torch.float32) -> List[dict]:
        """Per-level thing targets of one image.

        Args:
            gt_instances (:obj:`InstanceData`): ``labels`` (N, ), ``masks`` (BitmapMasks or a
                (N, h, w) tensor at the image or padded size), optional ``bboxes`` (N, 4).
            pad_shape (tuple[int]): (H, W) of the padded batch input.
            canvas (tuple[int]): (H/4, W/4) of the mask features.
            level_shapes (Sequence[tuple]): (Hl, Wl) of each kernel level.
            device (torch.device): Device of the targets.
            dtype (torch.dtype): Floating dtype of the targets. Defaults to torch.float32.

        Returns:
            list[dict]: Per level: ``center_heatmap`` (T, Hl, Wl), ``masks`` (Nl, H/4, W/4),
            ``labels`` (Nl, ), ``centers`` (Nl, 2) long (x, y) on the level grid.
        """
        t = self.num_things_classes
        masks = gt_instances.masks
        if not isinstance(masks, Tensor):
            masks = masks.to_tensor(dtype=torch.uint8, device=device)
        masks = masks.to(device)
        labels = gt_instances.labels.to(device).long()
        if len(labels) and (labels.min() < 0 or labels.max() >= t):
            raise ValueError(f'gt_instances.labels must be thing labels in [0, {t}), got '
                             f'{labels.tolist()}')
        masks4 = downsample_to_canvas(masks, self.common_stride, canvas, dtype=dtype)
        boxes = self._instance_boxes(gt_instances, masks, dtype)
        scales = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0).sqrt()
        if self.center_type == 'mass':
            centers = mass_centers(masks4)
            # an instance too thin to survive the shrink has no mass center: the release casts
            # the NaN to int64 and clamps it to (0, 0) (gt_generate.py); mmibs keeps the box
            # center, a documented difference (docs/release_differences.md)
            box_centers = (boxes[:, :2] + boxes[:, 2:]) / 2 / self.common_stride
            centers = torch.where(torch.isnan(centers), box_centers, centers)
        else:
            centers = (boxes[:, :2] + boxes[:, 2:]) / 2 / self.common_stride
        targets = []
        for (lo, hi), (hl, wl) in zip(self.instance_scales, level_shapes):
            keep = (scales >= lo) & (scales <= hi)
            num = int(keep.sum())
            if num > self.max_instances:
                raise ValueError(f'{num} instances fall in instance scale range ({lo}, {hi}); '
                                 f'max_instances (TENSOR_DIM) is {self.max_instances}')
            level_centers = centers[keep] * centers.new_tensor([wl / canvas[1], hl / canvas[0]])
            level_centers = level_centers.long()
            level_centers[:, 0].clamp_(0, wl - 1)
            level_centers[:, 1].clamp_(0, hl - 1)
            wh = torch.stack([(boxes[keep, 2] - boxes[keep, 0]) * wl / pad_shape[1],
                              (boxes[keep, 3] - boxes[keep, 1]) * hl / pad_shape[0]],
                             dim=1)
            radii = cornernet_gaussian_radius(wh, self.min_overlap).clamp(min=0).int().tolist()
            heatmap = masks4.new_zeros((t, hl, wl))
            for label, (cx, cy), radius in zip(labels[keep].tolist(), level_centers.tolist(),
                                               radii):
                draw_gaussian_max(heatmap[label], (cx, cy), radius, self.gaussian_sigma_factor)
            targets.append(
                dict(
                    center_heatmap=heatmap,
                    masks=masks4[keep],
                    labels=labels[keep],
                    centers=level_centers))
        return targets

    def stuff_targets(self,
                      sem_seg: Tensor,
                      canvas: Tuple[int, int],
                      level_shapes: Sequence[Tuple[int, int]],
                      dtype: torch.dtype = torch.float32) -> List[dict]:
        """Per-level stuff targets of one image.

        Args:
            sem_seg (Tensor): Labels, shape (h, w) (image or padded size; padding is void).
            canvas (tuple[int]): (H/4, W/4).
            level_shapes (Sequence[tuple]): (Hl, Wl) of each kernel level.
            dtype (torch.dtype): Floating dtype of the targets. Defaults to torch.float32.

        Returns:
            list[dict]: Per level: ``region_scores`` (R, Hl, Wl) soft targets of the region head,
            ``masks`` (S, H/4, W/4) stride-4 soft masks of the present classes (dice targets),
            ``region_masks`` (S, Hl, Wl) their binary level regions (kernel pooling) and
            ``labels`` (S, ) their region channels.
        """
        soft4 = downsample_to_canvas(
            self.region_one_hot(sem_seg, dtype), self.common_stride, canvas, dtype=dtype)
        targets = []
        for hl, wl in level_shapes:
            # shape (R, H/4, W/4) -> (R, Hl, Wl)
            scores = F.interpolate(
                soft4[None], size=(hl, wl), mode='bilinear', align_corners=False)[0].clamp(max=1.0)
            scores = torch.where(scores < self.region_score_thr, torch.zeros_like(scores), scores)
            present = scores.flatten(1).sum(1) > 0
            targets.append(
                dict(
                    region_scores=scores,
                    masks=soft4[present],
                    region_masks=(scores[present] > 0).to(dtype),
                    labels=present.nonzero()[:, 0]))
        return targets

    def __call__(self,
                 data_sample,
                 pad_shape: Tuple[int, int],
                 canvas: Tuple[int, int],
                 level_shapes: Sequence[Tuple[int, int]],
                 device: Optional[torch.device] = None,
                 dtype: torch.dtype = torch.float32) -> List[dict]:
        """Targets of one :obj:`DetDataSample`.

        Args:
            data_sample (:obj:`DetDataSample`): With ``gt_instances`` (things) and
                ``gt_sem_seg.sem_seg`` of shape (1, h, w).
            pad_shape (tuple[int]): (H, W) of the padded batch input.
            canvas (tuple[int]): (H/4, W/4).
            level_shapes (Sequence[tuple]): (Hl, Wl) of each kernel level (P3..P7).
            device (torch.device, optional): Defaults to the semantic map's device.
            dtype (torch.dtype): Floating dtype of the targets (the model's parameter dtype).
                Defaults to torch.float32.

        Returns:
            list[dict]: One dict per level with the keys of :meth:`thing_targets` (prefixed
            ``thing_``) and :meth:`stuff_targets` (prefixed ``stuff_``, except
            ``region_scores``).
        """
        if len(level_shapes) != len(self.instance_scales):
            raise ValueError(f'{len(level_shapes)} kernel levels but {len(self.instance_scales)} '
                             'instance_scales')
        if 'gt_sem_seg' not in data_sample:
            raise ValueError('Panoptic FCN needs data_sample.gt_sem_seg (all classes, '
                             f'{self.ignore_index} = void); use LoadPanopticAnnotations')
        sem_seg = data_sample.gt_sem_seg.sem_seg
        device = device if device is not None else sem_seg.device
        if not dtype.is_floating_point:
            raise ValueError(f'PanopticFCNTargetGenerator: dtype must be floating, got {dtype}')
        things = self.thing_targets(data_sample.gt_instances, pad_shape, canvas, level_shapes,
                                    device, dtype)
        stuff = self.stuff_targets(sem_seg[0].to(device), canvas, level_shapes, dtype)
        levels = []
        for th, st in zip(things, stuff):
            levels.append(
                dict(
                    center_heatmap=th['center_heatmap'],
                    thing_masks=th['masks'],
                    thing_labels=th['labels'],
                    thing_centers=th['centers'],
                    region_scores=st['region_scores'],
                    stuff_masks=st['masks'],
                    stuff_region_masks=st['region_masks'],
                    stuff_labels=st['labels']))
        return levels
