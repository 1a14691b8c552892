# Copyright (c) mmibs contributors. All rights reserved.
"""Synthetic street scenes written in the *raw* Cityscapes and Mapillary Vistas layouts.

The converters of :mod:`mmibs.datasets.converters` run unchanged on these folders, so tests and the
demo exercise the real data path (raw files -> converter -> dataset -> pipeline -> model). Each
image holds what makes IBS matter (``docs/method.md``, "The idea"): several large instances of the
same class side by side, touching or overlapping (cars, persons), plus stuff regions (sky,
building, vegetation, road, sidewalk), a crowd region (a group of bicycles) and void pixels.

Raw Cityscapes layout (label ids from ``cityscapesscripts.helpers.labels``)::

    out/leftImg8bit/<split>/<city>/<city>_<seq>_000019_leftImg8bit.png   RGB image
    out/gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_labelIds.png    uint8 labelIds
    out/gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_instanceIds.png uint16: things
        labelId * 1000 + k, crowd and stuff labelId, void 0 (unlabeled) or 1 (ego vehicle)
    out/gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_color.png       palette colours
    out/synthetic_manifest.json                                         what was drawn

Raw Mapillary Vistas layout (the v2.0 release, which ships v1.2 annotations next to v2.0)::

    out/config_v1.2.json
    out/<training|validation>/images/<key>.jpg
    out/<training|validation>/v1.2/panoptic/panoptic_2018.json
    out/<training|validation>/v1.2/panoptic/<key>.png   RGB-encoded segment ids, 0 = void
    out/synthetic_manifest.json

The manifest lists, per image, every segment as the generator drew it (category id, name, thing
flag, crowd flag, area and box measured on the final maps, after occlusion), so tests can compare a
converter's output with an independent record. Shorthand: H, W image height and width.
"""
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from cityscapesscripts.helpers.labels import id2label, name2label
from mmengine.utils import track_iter_progress

from mmibs.datasets.utils import load_json
from mmibs.utils.panoptic_ids import id2rgb
from .primitives import bbox_xywh, dump_json, ellipse, rect, write_image

#: The classes a scene draws -> their Mapillary Vistas v1.2 category id (``None``: void there;
#: Vistas has no 'void' category, panoptic id 0). Names are Cityscapes', whose labelIds, thing
#: flags and colours the scenes use (``cityscapesscripts.helpers.labels``).
_VISTAS_IDS = {
    'unlabeled': None,
    'ego vehicle': 65,  # Cityscapes: void; Vistas v1.2: stuff 'Ego Vehicle'
    'road': 14,
    'sidewalk': 16,
    'building': 18,
    'vegetation': 31,
    'sky': 28,
    'person': 20,
    'car': 56,
    'truck': 62,
    'bicycle': 53,
}
#: Scene class -> (is_thing, Cityscapes labelId, Vistas v1.2 category id).
SCENE_CLASSES = {
    name: (name2label[name].hasInstances, name2label[name].id, vistas_id)
    for name, vistas_id in _VISTAS_IDS.items()
}
#: Cityscapes labelIds that cityscapesscripts' panoptic conversion drops (ignoreInEval).
CITYSCAPES_VOID_IDS = tuple(name2label[n].id for n in SCENE_CLASSES if name2label[n].ignoreInEval)

# RGB: Cityscapes' palette, with the void classes (black there) lifted so that images show them
_BASE_COLOURS = {name: name2label[name].color for name in SCENE_CLASSES}
_BASE_COLOURS.update({'unlabeled': (20, 20, 20), 'ego vehicle': (90, 20, 20)})


class _Scene:
    """A drawn scene: a map of segment indices plus one record per segment.

    Args:
        height (int): H.
        width (int): W.
    """

    def __init__(self, height: int, width: int) -> None:
        self.seg = np.zeros((height, width), dtype=np.int32)  # (H, W) index into segments
        self.segments: List[dict] = []
        self._stuff: Dict[str, int] = {}

    def _index(self, cls: str, thing: bool, crowd: bool) -> int:
        key = cls if not thing or crowd else None
        if key is not None and key in self._stuff:  # one segment per stuff class / crowd class
            return self._stuff[key]
        self.segments.append(dict(cls=cls, isthing=thing and not crowd, iscrowd=crowd))
        index = len(self.segments) - 1
        if key is not None:
            self._stuff[key] = index
        return index

    def paint(self, mask: np.ndarray, cls: str, crowd: bool = False) -> int:
        """Paint ``mask`` (H, W) bool with a new instance (things) or the class segment."""
        index = self._index(cls, SCENE_CLASSES[cls][0], crowd)
        self.seg[mask] = index
        return index


def draw_scene(rng: np.random.Generator, height: int, width: int) -> _Scene:
    """Draw one street scene; all sizes are fractions of H and W, so any resolution works.

    Args:
        rng (np.random.Generator): Source of every random choice.
        height (int): H.
        width (int): W.

    Returns:
        _Scene: ``seg`` (H, W) int32 segment indices and ``segments`` (class, thing and crowd
        flags), segments possibly without pixels left after occlusion.
    """
    h, w = height, width
    scene = _Scene(h, w)
    horizon = rng.uniform(0.38, 0.48) * h
    scene.paint(np.ones((h, w), dtype=bool), 'sky')
    # Building blocks with ragged roofs along the horizon, vegetation blobs in front.
    x = 0.0
    while x < w:
        bw = rng.uniform(0.12, 0.3) * w
        scene.paint(rect(h, w, rng.uniform(0.05, 0.25) * h, horizon + 2, x, x + bw), 'building')
        x += bw + rng.uniform(0.0, 0.06) * w
    for _ in range(int(rng.integers(1, 3))):
        scene.paint(
            ellipse(h, w, horizon - rng.uniform(0.0, 0.05) * h,
                    rng.uniform(0.1, 0.9) * w,
                    rng.uniform(0.08, 0.14) * h,
                    rng.uniform(0.06, 0.12) * w), 'vegetation')
    scene.paint(rect(h, w, horizon, h, 0, w), 'road')
    side_left = bool(rng.integers(2))
    sw_x0, sw_x1 = (0, 0.3 * w) if side_left else (0.7 * w, w)
    scene.paint(rect(h, w, horizon, horizon + 0.22 * h, sw_x0, sw_x1), 'sidewalk')

    # A truck behind the row of cars (partly occluded), with probability 1/2.
    y_base = rng.uniform(0.78, 0.86) * h
    if rng.random() < 0.5:
        tx = rng.uniform(0.3, 0.5) * w
        scene.paint(rect(h, w, y_base - 0.42 * h, y_base - 0.06 * h, tx, tx + 0.22 * w), 'truck')
    # Several large cars side by side, each touching or overlapping the previous one: the
    # same-class neighbours whose masks crop-based training confuses (docs/method.md).
    num_cars = int(rng.integers(3, 5))
    x = rng.uniform(0.02, 0.15) * w
    for _ in range(num_cars):
        cw, ch = rng.uniform(0.13, 0.18) * w, rng.uniform(0.2, 0.26) * h
        yb = y_base + rng.uniform(-0.02, 0.02) * h
        car = rect(h, w, yb - 0.6 * ch, yb, x, x + cw)
        car |= rect(h, w, yb - ch, yb - 0.55 * ch, x + 0.18 * cw, x + 0.82 * cw)
        scene.paint(car, 'car')
        x += cw * (1.0 - rng.uniform(0.0, 0.12))  # touching (0) or overlapping up to 12 %
    # Two or three persons standing shoulder to shoulder on the sidewalk.
    if side_left:
        px = sw_x0 + rng.uniform(0.02, 0.08) * w
    else:
        px = sw_x1 - rng.uniform(0.15, 0.2) * w
    feet = horizon + rng.uniform(0.15, 0.2) * h
    for _ in range(int(rng.integers(2, 4))):
        pw, ph = rng.uniform(0.025, 0.035) * w, rng.uniform(0.28, 0.34) * h
        person = rect(h, w, feet - 0.82 * ph, feet, px, px + pw)
        person |= ellipse(h, w, feet - 0.9 * ph, px + pw / 2, 0.09 * ph, 0.45 * pw)
        scene.paint(person, 'person')
        px += pw * 0.95
    # A crowd region: a group of bicycles annotated as one region (no instance ids).
    cx = rng.uniform(0.55, 0.75) * w
    scene.paint(
        rect(h, w, horizon + 0.06 * h, horizon + 0.16 * h, cx, cx + 0.1 * w),
        'bicycle',
        crowd=True)
    # Void: an unlabeled patch and the ego vehicle's bonnet at the bottom.
    vx, vy = rng.uniform(0.0, 0.9) * w, rng.uniform(0.0, 0.3) * h
    scene.paint(rect(h, w, vy, vy + 0.05 * h, vx, vx + 0.06 * w), 'unlabeled')
    scene.paint(ellipse(h, w, 1.08 * h, 0.5 * w, 0.12 * h, 0.6 * w), 'ego vehicle')
    return scene


def render_image(rng: np.random.Generator, scene: _Scene) -> np.ndarray:
    """Texture a scene: class colour x per-instance shade + gradient + noise, dark outlines.

    Args:
        rng (np.random.Generator): Noise source.
        scene (_Scene): The drawn scene.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB image.
    """
    h, w = scene.seg.shape
    img = np.zeros((h, w, 3), dtype=np.float32)
    ramp = np.linspace(-1.0, 1.0, w, dtype=np.float32)  # (W, ) horizontal gradient
    for index, segment in enumerate(scene.segments):
        mask = scene.seg == index
        if not mask.any():
            continue
        colour = np.array(_BASE_COLOURS[segment['cls']], dtype=np.float32)
        # An instance-specific shade and slope: neighbouring same-class instances differ.
        shade = rng.uniform(0.65, 1.15) if segment['isthing'] else 1.0
        slope = rng.uniform(-20, 20) if segment['isthing'] else 0.0
        xs = np.nonzero(mask)[1]
        img[mask] = colour * shade + slope * ramp[xs, None]  # shape (N, 3)
    # Dark outlines on segment borders, so touching instances are separable by a network.
    edge = np.zeros((h, w), dtype=bool)
    edge[1:, :] |= scene.seg[1:, :] != scene.seg[:-1, :]
    edge[:, 1:] |= scene.seg[:, 1:] != scene.seg[:, :-1]
    img[edge] *= 0.35
    img += rng.normal(0.0, 6.0, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def present_segments(scene: _Scene) -> List[Tuple[int, dict, np.ndarray]]:
    """The segments with pixels left, with their masks (H, W) bool."""
    counts = np.bincount(scene.seg.ravel(), minlength=len(scene.segments))
    return [(i, s, scene.seg == i) for i, s in enumerate(scene.segments) if counts[i] > 0]


def _segment_record(segment: dict, mask: np.ndarray, seg_id: int, category_id: int) -> dict:
    """A manifest entry: a drawn segment as measured on the final map (mask (H, W) bool)."""
    return dict(
        id=int(seg_id),
        category_id=category_id,
        name=segment['cls'],
        isthing=SCENE_CLASSES[segment['cls']][0],
        iscrowd=int(segment['iscrowd']),
        area=int(mask.sum()),
        bbox=bbox_xywh(mask))


def _image_record(image_id: str, file_name: str, height: int, width: int, segments: List[dict],
                  void_area: int) -> dict:
    """A manifest entry for one image: its drawn segments and its void pixel count."""
    return dict(
        image_id=image_id,
        file_name=file_name,
        height=height,
        width=width,
        segments=segments,
        void_area=void_area)


def _cityscapes_image(rng: np.random.Generator, out_dir: str, split: str, city: str, seq: int,
                      height: int, width: int, write_color: bool) -> dict:
    scene = draw_scene(rng, height, width)
    stem = f'{city}_{seq:06d}_000019'
    label_ids = np.zeros((height, width), dtype=np.uint8)
    instance_ids = np.zeros((height, width), dtype=np.uint16)
    next_k: Dict[int, int] = {}
    segments, void_area = [], 0
    for _, segment, mask in present_segments(scene):
        label_id = SCENE_CLASSES[segment['cls']][1]
        label_ids[mask] = label_id
        if segment['isthing']:  # Cityscapes: instance id = labelId * 1000 + k
            k = next_k.get(label_id, 0)
            next_k[label_id] = k + 1
            seg_id = label_id * 1000 + k
        else:  # stuff, crowd and void pixels carry the bare labelId
            seg_id = label_id
        instance_ids[mask] = seg_id
        if label_id in CITYSCAPES_VOID_IDS:
            void_area += int(mask.sum())
            continue
        segments.append(_segment_record(segment, mask, seg_id, label_id))
    gt_dir = osp.join(out_dir, 'gtFine', split, city)
    write_image(
        render_image(rng, scene),
        osp.join(out_dir, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'))
    write_image(label_ids, osp.join(gt_dir, f'{stem}_gtFine_labelIds.png'))
    write_image(instance_ids, osp.join(gt_dir, f'{stem}_gtFine_instanceIds.png'))
    if write_color:
        lut = np.zeros((256, 3), dtype=np.uint8)
        for label_id, label in id2label.items():
            if 0 <= label_id < 256:
                lut[label_id] = label.color
        write_image(lut[label_ids], osp.join(gt_dir, f'{stem}_gtFine_color.png'))
    return _image_record(stem, f'{city}/{stem}_leftImg8bit.png', height, width, segments, void_area)


def _vistas_image(rng: np.random.Generator, out_dir: str, split: str, key: str, height: int,
                  width: int) -> Tuple[dict, dict, dict]:
    scene = draw_scene(rng, height, width)
    present = present_segments(scene)
    # Vistas segment ids are arbitrary: draw distinct ids that use all three RGB channels.
    ids = rng.choice(2**24 - 1, size=len(present), replace=False) + 1
    pan = np.zeros((height, width), dtype=np.int64)
    segments, void_area = [], 0
    for seg_id, (_, segment, mask) in zip(ids, present):
        category_id = SCENE_CLASSES[segment['cls']][2]
        if category_id is None:
            void_area += int(mask.sum())
            continue
        pan[mask] = seg_id
        segments.append(_segment_record(segment, mask, seg_id, category_id))
    image = render_image(rng, scene)
    write_image(image, osp.join(out_dir, split, 'images', f'{key}.jpg'), quality=92)
    write_image(id2rgb(pan), osp.join(out_dir, split, 'v1.2', 'panoptic', f'{key}.png'))
    image_info = dict(id=key, file_name=f'{key}.jpg', height=height, width=width)
    annotation = dict(
        image_id=key,
        file_name=f'{key}.png',
        segments_info=[{
            k: s[k]
            for k in ('id', 'category_id', 'area', 'bbox', 'iscrowd')
        } for s in segments])
    return image_info, annotation, _image_record(key, f'{key}.jpg', height, width, segments,
                                                 void_area)


def make_synthetic_cityscapes(out_dir: str,
                              num_train: int = 2,
                              num_val: int = 1,
                              height: int = 1024,
                              width: int = 2048,
                              seed: int = 0,
                              write_color: bool = True,
                              show_progress: bool = False) -> dict:
    """Write a synthetic Cityscapes in the raw ``leftImg8bit/`` + ``gtFine/`` layout.

    Args:
        out_dir (str): Dataset root to create.
        num_train (int): Images in ``train``. Defaults to 2.
        num_val (int): Images in ``val``. Defaults to 1.
        height (int): H. Defaults to 1024 (the real resolution).
        width (int): W. Defaults to 2048.
        seed (int): Seed of every random choice. Defaults to 0.
        write_color (bool): Also write ``*_gtFine_color.png``. Defaults to True.
        show_progress (bool): Show an mmengine progress bar. Defaults to False.

    Returns:
        dict: The manifest (also written to ``out_dir/synthetic_manifest.json``): ``layout``,
        ``height``, ``width``, ``seed`` and ``splits`` = {split: [image records]}, each record with
        ``image_id``, ``file_name`` (relative to ``leftImg8bit/<split>/``) and ``segments``
        (``id``, ``category_id`` (labelId), ``name``, ``isthing``, ``iscrowd``, ``area``,
        ``bbox`` [x, y, w, h]); void pixels are counted in ``void_area``.
    """
    _check_size(height, width)
    rng = np.random.default_rng(seed)
    cities = dict(train=('aachen', 'bremen'), val=('frankfurt', ))
    manifest = dict(
        layout='cityscapes', height=height, width=width, seed=seed, splits=dict(train=[], val=[]))
    tasks = [(split, k) for split, num in (('train', num_train), ('val', num_val))
             for k in range(num)]
    for split, k in track_iter_progress(tasks) if show_progress else tasks:
        city = cities[split][k % len(cities[split])]
        manifest['splits'][split].append(
            _cityscapes_image(rng, out_dir, split, city, k, height, width, write_color))
    dump_json(manifest, osp.join(out_dir, 'synthetic_manifest.json'))
    return manifest


def make_synthetic_vistas(out_dir: str,
                          num_train: int = 2,
                          num_val: int = 1,
                          height: int = 1024,
                          width: int = 2048,
                          seed: int = 0,
                          show_progress: bool = False) -> dict:
    """Write a synthetic Mapillary Vistas v1.2 (panoptic) in the raw release layout.

    Args:
        out_dir (str): Dataset root to create.
        num_train (int): Images in ``training``. Defaults to 2.
        num_val (int): Images in ``validation``. Defaults to 1.
        height (int): H. Defaults to 1024.
        width (int): W. Defaults to 2048.
        seed (int): Seed of every random choice. Defaults to 0.
        show_progress (bool): Show an mmengine progress bar. Defaults to False.

    Returns:
        dict: The manifest (also written to ``out_dir/synthetic_manifest.json``), as for
        :func:`make_synthetic_cityscapes` with Vistas v1.2 category ids and splits ``training``
        and ``validation``.
    """
    from mmibs.datasets.mapillary_vistas_panoptic import VISTAS_V12_CATEGORIES
    _check_size(height, width)
    rng = np.random.default_rng(seed)
    manifest = dict(layout='vistas', height=height, width=width, seed=seed, splits={})
    config = dict(labels=[
        dict(
            name=c['supercategory'],
            readable=c['name'],
            color=list(c['color']),
            instances=bool(c['isthing']),
            evaluate=True) for c in VISTAS_V12_CATEGORIES
    ] + [
        dict(
            name='void--unlabeled',
            readable='Unlabeled',
            color=[0, 0, 0],
            instances=False,
            evaluate=False)
    ])
    dump_json(config, osp.join(out_dir, 'config_v1.2.json'))
    splits = (('training', num_train), ('validation', num_val))
    drawn = {split: [] for split, _ in splits}
    tasks = [(split, k) for split, num in splits for k in range(num)]
    for split, k in track_iter_progress(tasks) if show_progress else tasks:
        key = f'{split[:3]}{seed:03d}{k:05d}syn'  # Vistas keys are opaque strings
        drawn[split].append(_vistas_image(rng, out_dir, split, key, height, width))
    for split, _ in splits:
        images, annotations, records = zip(*drawn[split]) if drawn[split] else ((), (), ())
        # Vistas' own json lists categories by id, things and stuff interleaved.
        dump_json(
            dict(
                images=list(images),
                annotations=list(annotations),
                categories=VISTAS_V12_CATEGORIES),
            osp.join(out_dir, split, 'v1.2', 'panoptic', 'panoptic_2018.json'))
        manifest['splits'][split] = list(records)
    dump_json(manifest, osp.join(out_dir, 'synthetic_manifest.json'))
    return manifest


def _check_size(height: int, width: int) -> None:
    if height < 64 or width < 64:
        raise ValueError(f'synthetic images need height and width >= 64, got {height}x{width}')


def make_synthetic_dataset(layout: str, out_dir: str, **kwargs) -> dict:
    """Dispatch to :func:`make_synthetic_cityscapes` or :func:`make_synthetic_vistas`.

    Args:
        layout (str): ``'cityscapes'`` or ``'vistas'``.
        out_dir (str): Dataset root to create.
        **kwargs: Passed on (``num_train``, ``num_val``, ``height``, ``width``, ``seed``...).

    Returns:
        dict: The manifest.
    """
    makers = dict(cityscapes=make_synthetic_cityscapes, vistas=make_synthetic_vistas)
    if layout not in makers:
        raise ValueError(f'layout must be one of {sorted(makers)}, got {layout!r}')
    return makers[layout](out_dir, **kwargs)


def load_manifest(path: str) -> dict:
    """Read a manifest written by the generators."""
    return load_json(path)
