# Copyright (c) mmibs contributors. All rights reserved.
"""Figures of mask confusion: the two figure kinds of the IBS paper, drawn from id maps.

The paper's point (its Figure 1; ``docs/method.md#the-idea``) is that crop-trained unified
networks produce *confused* masks: one predicted segment spreads over several large instances of
the same class. Two figure kinds show it:

- :func:`draw_instance_comparison`: one ground-truth thing instance, then, for every model, the
  predicted segment that covers it best, split into its part inside the instance and its part
  outside it (the spread), with IoU, pixel precision and pixel recall in the panel title;
- :func:`draw_panoptic` (from :mod:`mmibs.visualization.panoptic_figure`, re-exported here): a
  full panoptic map with a unique colour, an outline and a text label per segment.

Everything here works on numpy arrays; nothing needs a model. Panoptic id maps follow mmdet's
``pred_panoptic_seg`` convention: ``id = label + inst_id * INSTANCE_OFFSET`` (1000), ``inst_id = 0``
for stuff (and, in ground truth, crowd regions), and the void label is ``num_classes``.

Shape shorthand: H, W image height and width; S number of segments.
"""
from typing import Iterable, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from mmdet.evaluation.functional import INSTANCE_OFFSET

from .panoptic_figure import (SegmentInfo, _check_id_map, _check_image, _void_mask,
                              describe_segments, draw_panoptic, figure_to_array,
                              instance_palette, label_anchor)

__all__ = [
    'SegmentMatch', 'best_covering_segment', 'draw_instance_comparison', 'draw_panoptic',
    'describe_segments', 'instance_palette', 'label_anchor', 'SegmentInfo'
]

# Instance-figure colours (RGB, 0-1), picked to stay apart on street scenes and for the common
# colour-vision deficiencies: blue/orange-red for inside/outside, green and yellow outlines.
_GT_COLOR = (0.0, 0.85, 0.25)
_INSIDE_COLOR = (0.12, 0.47, 0.95)
_OUTSIDE_COLOR = (0.95, 0.25, 0.1)
_CONTEXT_COLOR = (1.0, 0.88, 0.1)


class SegmentMatch(NamedTuple):
    """The predicted segment that best covers one ground-truth mask.

    ``pred_id`` is None when no non-void prediction touches the mask; the ratios are then 0.
    """
    pred_id: Optional[int]
    overlap: int  # |g & p| in pixels
    iou: float  # |g & p| / |g | p|
    precision: float  # |g & p| / |p|: low when the prediction spreads over neighbours
    recall: float  # |g & p| / |g|


def best_covering_segment(gt_mask: np.ndarray,
                          pred_ids: np.ndarray,
                          void_label: Optional[int] = None) -> SegmentMatch:
    """Find the predicted segment with the largest overlap with a ground-truth mask.

    The largest overlap, not the best IoU, is what the paper's figures show: a confused
    prediction covers the instance well but spreads over its neighbours, so it is found here and
    its low precision tells the story. Ties go to the higher IoU, then to the smaller id.

    Args:
        gt_mask (np.ndarray): (H, W) bool mask of the ground-truth segment.
        pred_ids (np.ndarray): (H, W) integer panoptic id map of one prediction.
        void_label (int, optional): Label (``id % INSTANCE_OFFSET``) of void pixels, which are
            never a covering segment. Defaults to None (no void).

    Returns:
        SegmentMatch: ``(pred_id, overlap, iou, precision, recall)``.
    """
    _check_id_map('pred_ids', pred_ids)
    if gt_mask.shape != pred_ids.shape:
        raise ValueError(f'gt_mask has shape {gt_mask.shape} but pred_ids has {pred_ids.shape}')
    gt_mask = gt_mask.astype(bool)
    gt_area = int(gt_mask.sum())
    if gt_area == 0:
        raise ValueError('gt_mask is empty: there is no segment to cover')
    inside = pred_ids[gt_mask]
    inside = inside[~_void_mask(inside, void_label)]
    if inside.size == 0:
        return SegmentMatch(None, 0, 0.0, 0.0, 0.0)
    ids, overlaps = np.unique(inside, return_counts=True)
    best = None
    for pred_id in ids[overlaps == overlaps.max()]:  # usually a single candidate
        overlap = int(overlaps.max())
        pred_area = int((pred_ids == pred_id).sum())
        iou = overlap / (gt_area + pred_area - overlap)
        match = SegmentMatch(int(pred_id), overlap, iou, overlap / pred_area, overlap / gt_area)
        if best is None or match.iou > best.iou:
            best = match
    return best


def _crop_box(masks: Iterable[np.ndarray], shape: Tuple[int, int], margin: float,
              min_size: int) -> Tuple[slice, slice]:
    """A box around the union of masks, widened by ``margin`` of its size and to ``min_size``."""
    union = np.zeros(shape, dtype=bool)
    for mask in masks:
        union |= mask
    ys, xs = np.nonzero(union)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    spans = []
    for lo, hi, size in ((y0, y1, shape[0]), (x0, x1, shape[1])):
        grow = max((hi - lo) * margin, (min_size - (hi - lo)) / 2, 0)
        lo, hi = int(max(0, lo - grow)), int(min(size, hi + grow))
        spans.append(slice(lo, hi))
    return spans[0], spans[1]


def _fill(img: np.ndarray, masks_colors, alpha: float) -> np.ndarray:
    """Blend each (mask, RGB 0-1 colour) pair into the image, in float32 like draw_panoptic."""
    out = img.astype(np.float32)
    alpha = np.float32(alpha)
    for mask, color in masks_colors:
        color = np.asarray(color, np.float32) * np.float32(255)
        out[mask] = out[mask] * (1 - alpha) + color * alpha
    return out.clip(0, 255).astype(np.uint8)


def draw_instance_comparison(img: np.ndarray,
                             gt_mask: np.ndarray,
                             preds: Mapping[str, np.ndarray],
                             classes: Optional[Sequence[str]] = None,
                             gt_label: Optional[int] = None,
                             void_label: Optional[int] = None,
                             context_masks: Sequence[np.ndarray] = (),
                             crop: bool = True,
                             margin: float = 0.3,
                             title: Optional[str] = None,
                             panel_width: float = 4.5,
                             dpi: int = 100) -> np.ndarray:
    """Draw one GT instance and, per model, the predicted segment that best covers it.

    Panel 1 shows the image with the ground-truth instance filled (green) and the other
    ground-truth instances of its class outlined (yellow). Each following panel shows one model's
    best covering segment (:func:`best_covering_segment`): blue inside the instance, orange-red
    outside it, that is, spread over the neighbours, a confused mask (``docs/method.md#the-idea``).
    Panel titles give IoU, pixel precision and pixel recall. All panels share one crop.

    Args:
        img (np.ndarray): RGB uint8 image, (H, W, 3).
        gt_mask (np.ndarray): (H, W) bool mask of the ground-truth instance.
        preds (Mapping[str, np.ndarray]): Model name -> (H, W) integer panoptic id map.
        classes (Sequence[str], optional): Class names, to name the predicted segments' classes.
            Defaults to None.
        gt_label (int, optional): Label of the ground-truth instance. Defaults to None.
        void_label (int, optional): Void label of the predictions. Defaults to ``len(classes)``
            when classes are given, else None.
        context_masks (Sequence[np.ndarray]): (H, W) bool masks of the other ground-truth
            instances of the class, outlined. Defaults to ().
        crop (bool): Crop all panels to the instance and the covering segments. Defaults to True.
        margin (float): Crop margin, as a fraction of the box size. Defaults to 0.3.
        title (str, optional): Figure title. Defaults to None.
        panel_width (float): Width of one panel in inches. Defaults to 4.5.
        dpi (int): Figure resolution. Defaults to 100.

    Returns:
        np.ndarray: RGB uint8 figure with ``1 + len(preds)`` panels side by side.
    """
    _check_image(img)
    gt_mask = np.asarray(gt_mask).astype(bool)
    if gt_mask.shape != img.shape[:2]:
        raise ValueError(f'gt_mask has shape {gt_mask.shape}, expected {img.shape[:2]}')
    if not preds:
        raise ValueError('preds is empty: give at least one model prediction')
    if void_label is None and classes is not None:
        void_label = len(classes)
    pred_masks, titles = {}, {}
    for name, pred_ids in preds.items():
        _check_id_map(f'preds[{name!r}]', pred_ids, img.shape[:2])
        match = best_covering_segment(gt_mask, pred_ids, void_label)
        pred_masks[name] = pred_ids == match.pred_id if match.pred_id is not None else \
            np.zeros_like(gt_mask)
        titles[name] = _match_title(name, match, classes)
    context = [np.asarray(m).astype(bool) for m in context_masks]
    if crop:
        ys, xs = _crop_box([gt_mask, *pred_masks.values()], gt_mask.shape, margin, min_size=32)
    else:
        ys, xs = slice(None), slice(None)

    num = 1 + len(preds)
    crop_h, crop_w = gt_mask[ys, xs].shape
    panel_h = panel_width * crop_h / crop_w
    fig = Figure(figsize=(panel_width * num, panel_h + 1.25), dpi=dpi)
    axes = fig.subplots(1, num, squeeze=False)[0]
    fig.subplots_adjust(left=0.005, right=0.995, wspace=0.02, bottom=0.55 / (panel_h + 1.25),
                        top=1 - 0.7 / (panel_h + 1.25))
    gt_name = classes[gt_label] if classes is not None and gt_label is not None else 'instance'
    panels = [(f'GT: {gt_name}, {int(gt_mask.sum())} px',
               _fill(img, [(gt_mask, _GT_COLOR)], 0.45))]
    for name, mask in pred_masks.items():
        panels.append((titles[name],
                       _fill(img, [(mask & gt_mask, _INSIDE_COLOR),
                                   (mask & ~gt_mask, _OUTSIDE_COLOR)], 0.55)))
    for ax, (panel_title, picture) in zip(axes, panels):
        ax.imshow(picture[ys, xs], interpolation='nearest')
        for mask in context:
            if mask[ys, xs].any():
                ax.contour(mask[ys, xs], levels=[0.5], colors=[_CONTEXT_COLOR], linewidths=1.2,
                           linestyles='dashed')
        ax.contour(gt_mask[ys, xs], levels=[0.5], colors=[_GT_COLOR], linewidths=1.8)
        ax.set_title(panel_title, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.05 / (panel_h + 1.25), va='top')
    handles = [Patch(color=_GT_COLOR, label='GT instance'),
               Patch(color=_INSIDE_COLOR, label='prediction inside GT'),
               Patch(color=_OUTSIDE_COLOR, label='prediction outside GT (spread)')]
    if any(mask[ys, xs].any() for mask in context):
        handles.append(Patch(color=_CONTEXT_COLOR, label=f'other GT {gt_name} instances'))
    fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    return figure_to_array(fig)


def _match_title(name: str, match: SegmentMatch, classes: Optional[Sequence[str]]) -> str:
    if match.pred_id is None:
        return f'{name}: no segment covers it'
    label = match.pred_id % INSTANCE_OFFSET
    what = classes[label] if classes is not None and label < len(classes) else f'label {label}'
    return (f'{name}: {what}\nIoU {match.iou:.2f} | prec {match.precision:.2f} | '
            f'rec {match.recall:.2f}')
