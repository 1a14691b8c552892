# Copyright (c) mmibs contributors. All rights reserved.
"""Panoptic maps drawn with a unique colour, an outline and a text label per segment.

Used by the confusion figures (:mod:`mmibs.visualization.confusion`) and the figure tools. Id maps
follow mmdet's ``pred_panoptic_seg`` convention: ``id = label + inst_id * INSTANCE_OFFSET`` (1000),
``inst_id = 0`` for stuff (and, in ground truth, crowd regions), and the void label is
``num_classes``.

Shape shorthand: H, W image height and width; H', W' figure size; U unique ids of a map.
"""
import colorsys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from mmdet.evaluation.functional import INSTANCE_OFFSET


class SegmentInfo(NamedTuple):
    """One segment of a panoptic id map, as :func:`describe_segments` names it."""
    id: int
    label: int
    area: int
    text: str  # 'car', 'car #2' or 'car (crowd)'
    color: Tuple[int, int, int]  # unique RGB over the map


def _check_id_map(name: str, ids: np.ndarray, shape: Optional[Tuple[int, int]] = None) -> None:
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f'{name} must be an integer (H, W) id map, got dtype {ids.dtype} and '
                         f'shape {ids.shape}')
    if shape is not None and ids.shape != tuple(shape):
        raise ValueError(f'{name} has shape {ids.shape}, expected {tuple(shape)} (the image size)')


def _check_image(img: np.ndarray) -> None:
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'img must be an RGB uint8 (H, W, 3) array, got dtype {img.dtype} and '
                         f'shape {img.shape}')


def _void_mask(ids: np.ndarray, void_label: Optional[int]) -> np.ndarray:
    """Pixels whose label (id modulo INSTANCE_OFFSET) is the void label; (H, W) bool."""
    if void_label is None:
        return np.zeros(ids.shape, dtype=bool)
    return ids % INSTANCE_OFFSET == void_label


def instance_palette(base: Sequence[int], num: int) -> List[Tuple[int, int, int]]:
    """Distinct shades of one class colour, one per instance of that class.

    Lightness is spread over [0.3, 0.8] in HLS space with a small alternating hue shift, so that
    instances of one class read as one family of colours and neighbours stay distinguishable.

    Args:
        base (Sequence[int]): RGB class colour, 0-255.
        num (int): Number of shades.

    Returns:
        list[tuple[int, int, int]]: ``num`` RGB colours; the first is ``base`` when ``num == 1``.
    """
    if num == 1:
        return [tuple(int(c) for c in base)]
    hue, _, sat = colorsys.rgb_to_hls(*(c / 255 for c in base))
    sat = max(sat, 0.45)  # grey classes would otherwise give grey shades only
    shades = []
    for k, light in enumerate(np.linspace(0.3, 0.8, num)):
        shifted = (hue + (0.03 if k % 2 else -0.03)) % 1.0
        shades.append(tuple(int(round(c * 255)) for c in colorsys.hls_to_rgb(shifted, light, sat)))
    return shades


def _make_unique(color: Tuple[int, int, int], used: set) -> Tuple[int, int, int]:
    """Nudge a colour until no other segment uses it (two classes may share a palette colour)."""
    rgb = np.array(color, dtype=np.int64)
    step = 0
    while tuple(rgb) in used:
        step += 1
        rgb = (np.array(color) + step * np.array([7, -11, 13])) % 256
    used.add(tuple(int(c) for c in rgb))
    return tuple(int(c) for c in rgb)


def describe_segments(pan_ids: np.ndarray,
                      classes: Sequence[str],
                      palette: Sequence[Sequence[int]],
                      num_things: Optional[int] = None,
                      void_label: Optional[int] = None) -> List[SegmentInfo]:
    """List the segments of a panoptic id map with a text label and a unique colour each.

    Things are numbered per class by decreasing area (``car #1`` is the largest car) and get
    distinct shades of their class colour (:func:`instance_palette`); stuff keeps the class colour.

    Args:
        pan_ids (np.ndarray): (H, W) integer panoptic id map.
        classes (Sequence[str]): Class names, indexed by label.
        palette (Sequence[Sequence[int]]): RGB colour (0-255) per class.
        num_things (int, optional): Labels below it are thing classes; an id with ``inst_id 0`` of
            a thing class is then a crowd region. Defaults to None (no crowd naming).
        void_label (int, optional): Label of void pixels, left out. Defaults to ``len(classes)``.

    Returns:
        list[SegmentInfo]: Segments sorted by decreasing area.
    """
    _check_id_map('pan_ids', pan_ids)
    if len(palette) < len(classes):
        raise ValueError(f'palette has {len(palette)} colours for {len(classes)} classes')
    void_label = len(classes) if void_label is None else void_label
    ids, areas = np.unique(pan_ids, return_counts=True)
    keep = ids % INSTANCE_OFFSET != void_label
    ids, areas = ids[keep], areas[keep]
    labels = ids % INSTANCE_OFFSET
    if labels.size and labels.max() >= len(classes):
        raise ValueError(f'pan_ids holds label {int(labels.max())} but only {len(classes)} '
                         f'classes are known (void label {void_label})')
    order = np.argsort(-areas, kind='stable')
    used: set = set()
    infos: Dict[int, SegmentInfo] = {}
    # Stuff and crowd first, so that they keep the plain class colour when shades collide.
    for idx in order[ids[order] < INSTANCE_OFFSET]:
        label = int(labels[idx])
        crowd = num_things is not None and label < num_things
        text = f'{classes[label]} (crowd)' if crowd else classes[label]
        color = _make_unique(tuple(int(c) for c in palette[label]), used)
        infos[int(ids[idx])] = SegmentInfo(int(ids[idx]), label, int(areas[idx]), text, color)
    things = order[ids[order] >= INSTANCE_OFFSET]
    for label in np.unique(labels[things]):
        members = things[labels[things] == label]  # already by decreasing area
        shades = instance_palette(palette[label], len(members))
        for k, (idx, shade) in enumerate(zip(members, shades), start=1):
            color = _make_unique(shade, used)
            infos[int(ids[idx])] = SegmentInfo(int(ids[idx]), int(label), int(areas[idx]),
                                               f'{classes[label]} #{k}', color)
    return [infos[int(ids[idx])] for idx in order]


def label_anchor(mask: np.ndarray) -> Tuple[int, int]:
    """A point deep inside the mask, for its text label.

    Unlike the centroid, it always lies inside the mask, even for ring- or L-shaped segments:
    among the points at least 80% as far from the mask border as the farthest one, the one
    nearest to the centroid (so that long segments are labelled near their middle, not at one end).

    Args:
        mask (np.ndarray): (H, W) bool mask, not empty.

    Returns:
        tuple[int, int]: ``(y, x)``.
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError('label_anchor needs a non-empty mask')
    y0, x0 = ys.min(), xs.min()
    # Crop to the box plus a 1-pixel frame so that the image border counts as the mask border.
    crop = np.pad(mask[y0:ys.max() + 1, x0:xs.max() + 1].astype(np.uint8), 1)
    dist = cv2.distanceTransform(crop, cv2.DIST_L2, 3)
    cand_y, cand_x = np.nonzero(dist >= 0.8 * dist.max())
    centre_y, centre_x = ys.mean() - y0 + 1, xs.mean() - x0 + 1
    best = int(np.argmin((cand_y - centre_y)**2 + (cand_x - centre_x)**2))
    return int(y0 + cand_y[best] - 1), int(x0 + cand_x[best] - 1)


def segment_boundaries(pan_ids: np.ndarray, thickness: int = 2) -> np.ndarray:
    """Pixels next to a pixel of another segment (4-neighbourhood); (H, W) bool.

    Both sides of an id change are marked, so a line of thickness 2 straddles the boundary.

    Args:
        pan_ids (np.ndarray): (H, W) integer id map.
        thickness (int): Line width in pixels; above 2 the lines are dilated. Defaults to 2.
    """
    edges = np.zeros(pan_ids.shape, dtype=bool)
    horizontal = pan_ids[:, 1:] != pan_ids[:, :-1]
    vertical = pan_ids[1:, :] != pan_ids[:-1, :]
    edges[:, :-1] |= horizontal
    edges[:, 1:] |= horizontal
    edges[:-1, :] |= vertical
    edges[1:, :] |= vertical
    if thickness > 2:
        kernel = np.ones((thickness - 1, thickness - 1), np.uint8)
        edges = cv2.dilate(edges.astype(np.uint8), kernel).astype(bool)
    return edges


def resize_for_display(img: np.ndarray, ids: np.ndarray,
                       width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Resize an image and its id map to the figure width, so lines and text have figure sizes.

    The id map is sampled with nearest neighbours (ids must not blend); the image is upsampled
    with nearest neighbours as well (pixels stay aligned with the ids) and downsampled by area.

    Args:
        img (np.ndarray): (H, W, 3) image.
        ids (np.ndarray): (H, W) integer id map.
        width (int): Output width W'.

    Returns:
        tuple[np.ndarray, np.ndarray]: (H', W', 3) image and (H', W') id map, H' = H * W' / W.
    """
    height, img_width = ids.shape
    out_h = max(1, round(height * width / img_width))
    rows = np.minimum((np.arange(out_h) + 0.5) * height / out_h, height - 1).astype(np.int64)
    cols = np.minimum((np.arange(width) + 0.5) * img_width / width,
                      img_width - 1).astype(np.int64)
    ids = ids[rows[:, None], cols[None, :]]  # shape (H', W')
    if width >= img_width:
        img = img[rows[:, None], cols[None, :]]
    else:
        img = cv2.resize(img, (width, out_h), interpolation=cv2.INTER_AREA)
    return img, ids


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a matplotlib figure with the Agg backend; returns an RGB uint8 (H, W, 3) array."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _overlaps(box, boxes) -> bool:
    return any(box.overlaps(other) for other in boxes)


def _place_labels(fig: Figure, ax, segments: Sequence[SegmentInfo], pan_ids: np.ndarray,
                  min_area: int, fontsize: float) -> int:
    """Write each segment's text at its inner point of ``pan_ids``, dropping overlapping texts.

    Larger segments are labelled first, so a dropped text belongs to a small segment (its class
    is still in the legend). Returns the number of labels written.
    """
    renderer = FigureCanvasAgg(fig).get_renderer()
    placed = []
    for seg in segments:
        mask = pan_ids == seg.id
        if seg.area < min_area or not mask.any():  # a tiny segment may vanish when downscaled
            continue
        y, x = label_anchor(mask)
        light = sum(seg.color) / 3 > 150
        text = ax.text(x, y, seg.text, fontsize=fontsize, ha='center', va='center',
                       color='black' if light else 'white',
                       bbox=dict(boxstyle='round,pad=0.15', lw=0, alpha=0.75,
                                 fc=tuple(c / 255 for c in seg.color)))
        box = text.get_window_extent(renderer=renderer)
        if _overlaps(box, placed):
            text.remove()
            continue
        placed.append(box)
    return len(placed)


def draw_panoptic(img: np.ndarray,
                  pan_ids: np.ndarray,
                  classes: Sequence[str],
                  palette: Sequence[Sequence[int]],
                  num_things: Optional[int] = None,
                  void_label: Optional[int] = None,
                  title: Optional[str] = None,
                  alpha: float = 0.6,
                  min_label_area: Optional[int] = None,
                  width: int = 1600,
                  dpi: int = 100) -> np.ndarray:
    """Draw a panoptic map: unique colour, outline and text label per segment, class legend.

    mmdet's ``DetLocalVisualizer`` colours every instance of a class alike and labels segments by
    class only, which hides exactly what this figure must show (which pixels went to which car), so
    this is drawn here: shades per instance (:func:`describe_segments`), ``class #k`` labels.

    Args:
        img (np.ndarray): RGB uint8 image, (H, W, 3).
        pan_ids (np.ndarray): (H, W) integer panoptic id map.
        classes (Sequence[str]): Class names, indexed by label.
        palette (Sequence[Sequence[int]]): RGB colour (0-255) per class.
        num_things (int, optional): Number of thing classes (labels ``[0, num_things)``), used to
            name crowd regions. Defaults to None.
        void_label (int, optional): Label of void pixels, left uncoloured. Defaults to
            ``len(classes)``.
        title (str, optional): Figure title. Defaults to None.
        alpha (float): Opacity of the segment colours. Defaults to 0.6.
        min_label_area (int, optional): Segments smaller than this get no text label. Defaults to
            0.1% of the image.
        width (int): Width of the returned figure in pixels (the image is scaled to fit).
            Defaults to 1600.
        dpi (int): Figure resolution. Defaults to 100.

    Returns:
        np.ndarray: RGB uint8 figure, about ``width`` pixels wide.
    """
    _check_image(img)
    _check_id_map('pan_ids', pan_ids, img.shape[:2])
    segments = describe_segments(pan_ids, classes, palette, num_things, void_label)
    # Draw at the figure's resolution: 2-pixel outlines and 9-point labels whatever the image size.
    img, ids = resize_for_display(img, pan_ids, width)
    height = ids.shape[0]
    # Colour by segment through a lookup table over the map's unique ids; void stays uncoloured.
    uniq, inverse = np.unique(ids, return_inverse=True)
    inverse = inverse.reshape(ids.shape)  # shape (H', W'), index into uniq
    color_of = {seg.id: seg.color for seg in segments}
    lut = np.array([color_of.get(int(i), (0, 0, 0)) for i in uniq], dtype=np.float32)  # (U, 3)
    coloured = np.array([int(i) in color_of for i in uniq])
    overlay = lut[inverse]  # shape (H', W', 3)
    # float32 throughout, so that a colour is the same in every pixel (and in tests)
    blend = (np.float32(alpha) * coloured[inverse].astype(np.float32))[..., None]  # (H', W', 1)
    canvas = img.astype(np.float32) * (1 - blend) + overlay * blend
    canvas[segment_boundaries(ids)] = 255
    canvas = canvas.clip(0, 255).astype(np.uint8)

    legend_rows = int(np.ceil(len({s.label for s in segments}) / 6))
    fig_w, img_h = width / dpi, height / dpi
    fig_h = img_h + 0.5 + 0.3 * legend_rows
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    # The axes are exactly the canvas' size in pixels: shown 1:1, no resampling.
    ax = fig.add_axes((0, (0.3 * legend_rows + 0.1) / fig_h, 1, img_h / fig_h))
    ax.imshow(canvas, interpolation='none')
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=12, y=1 - 0.08 / fig_h, va='top')
    min_area = int(0.001 * pan_ids.size) if min_label_area is None else min_label_area
    _place_labels(fig, ax, segments, ids, min_area, fontsize=9)
    handles = [Patch(color=tuple(c / 255 for c in palette[label]), label=classes[label])
               for label in sorted({s.label for s in segments})]
    if handles:
        fig.legend(handles=handles, loc='lower center', ncol=min(6, len(handles)), fontsize=9,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
    return figure_to_array(fig)
