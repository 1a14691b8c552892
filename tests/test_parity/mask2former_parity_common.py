# Copyright (c) mmibs contributors. All rights reserved.
"""What the Mask2Former parity fixture and its tests must compute identically on both sides.

Used by ``.dev_scripts/make_mask2former_parity_fixture.py`` (the release side, in the reference
environment with detectron2) and by ``tests/test_parity/test_mask2former_parity.py`` (the mmibs
side, no detectron2). Nothing here imports the release or detectron2.

- :func:`release_weights`: the small release model's parameters, a deterministic function of
  (seed, tensor name, shape), so the fixture stores names, shapes and a seed instead of weights;
  the batch-norm statistics (calibrated on the test image by the fixture script) are stored.
- :class:`PointOracle`: replaces ``torch.rand`` inside the point-sampled losses so that every
  random point is a function of (decoder layer, draw kind, number of points, mask row). The
  release and mmibs then sample the same points whenever they see the same logits; the points
  that depend on the logits (the importance-sampled 75 %) follow from the logits on each side.
- :func:`scene`: the synthetic images and their panoptic ground truth (Cityscapes trainIds).

Shape shorthand: Q queries, K classes, P points, L prediction layers.
"""
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

#: Release (detectron2 yaml) keys of the small model, over the released Cityscapes IBS yaml.
SMALL_RELEASE_CFG = {
    'MODEL.RESNETS.DEPTH': 18,
    'MODEL.RESNETS.RES2_OUT_CHANNELS': 64,
    'MODEL.SEM_SEG_HEAD.CONVS_DIM': 32,
    'MODEL.SEM_SEG_HEAD.MASK_DIM': 32,
    'MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS': 2,
    'MODEL.MASK_FORMER.HIDDEN_DIM': 32,
    'MODEL.MASK_FORMER.NHEADS': 4,
    'MODEL.MASK_FORMER.DIM_FEEDFORWARD': 64,
    'MODEL.MASK_FORMER.NUM_OBJECT_QUERIES': 12,
    'MODEL.MASK_FORMER.DEC_LAYERS': 4,
    'MODEL.MASK_FORMER.TRAIN_NUM_POINTS': 256,
    'TEST.DETECTIONS_PER_IMAGE': 30,
}
NUM_POINTS = 256
OVERSAMPLE_RATIO = 3.0
IMPORTANCE_SAMPLE_RATIO = 0.75
HEIGHT, WIDTH = 64, 128
NUM_THINGS, NUM_STUFF = 8, 11
NUM_CLASSES = NUM_THINGS + NUM_STUFF
#: mmibs label r (things first; 19 = no object) -> release class (Cityscapes trainId; 19).
CLASS_PERM = [NUM_STUFF + r for r in range(NUM_THINGS)] + list(range(NUM_STUFF)) + [NUM_CLASSES]
TRAINID_TO_LABEL = {t: i for i, t in enumerate(CLASS_PERM[:NUM_CLASSES])}


def _generator(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f'{seed}/{name}'.encode()))


def release_weights(shapes: Dict[str, Sequence[int]], seed: int,
                    scales: Optional[Dict[str, float]] = None) -> Dict[str, torch.Tensor]:
    """Deterministic float32 weights for the release model's state dict.

    Per tensor, from a generator seeded with crc32(f'{seed}/{name}'):

    - ``num_batches_tracked``: 0; ``running_mean``: 0; ``running_var``: 1 (the fixture stores the
      calibrated statistics, which replace these); ``criterion.empty_weight``: the release's
      class weights (1, no object NO_OBJECT_WEIGHT 0.1);
    - 1-D ``weight`` (norm affines): U(0.5, 1.5); 1-D ``bias``: N(0, 0.1);
    - ``query_feat`` / ``query_embed`` / ``level_embed`` (embeddings): N(0, 1);
    - other tensors (convs, linears, attention projections): N(0, 1 / fan_in).

    ``scales`` multiplies every tensor whose name contains a key (the fixture sharpens the class
    head and the mask embedding so that the random model makes decisive predictions).

    Args:
        shapes (dict[str, Sequence[int]]): Release state-dict names and shapes.
        seed (int): The weight seed.
        scales (dict[str, float], optional): Name substring -> multiplier. Defaults to None.

    Returns:
        dict[str, Tensor]: name -> tensor (int64 for ``num_batches_tracked``).
    """
    out = {}
    for name, shape in shapes.items():
        shape = tuple(int(s) for s in shape)
        g = _generator(seed, name)
        leaf = name.rsplit('.', 1)[-1]
        if leaf == 'num_batches_tracked':
            out[name] = torch.zeros(shape, dtype=torch.int64)
            continue
        if name == 'criterion.empty_weight':  # the class weights: 1, no object 0.1
            value = torch.ones(shape)
            value[-1] = 0.1
        elif leaf == 'running_mean':
            value = torch.zeros(shape)
        elif leaf == 'running_var':
            value = torch.ones(shape)
        elif len(shape) == 1 and leaf == 'weight':
            value = torch.rand(shape, generator=g) + 0.5
        elif len(shape) == 1:
            value = torch.randn(shape, generator=g) * 0.1
        elif any(k in name for k in ('query_feat', 'query_embed', 'level_embed')):
            value = torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = torch.randn(shape, generator=g) / np.sqrt(fan_in)
        for key, factor in (scales or {}).items():
            if key in name:
                value = value * factor
        out[name] = value
    return out


class PointOracle:
    """``torch.rand`` for the point-sampled losses, keyed by what is being sampled.

    While a role is set, a call ``torch.rand(n, m, 2)`` returns rows drawn each from its own
    generator seeded with crc32(f'{seed}/{layer}/{role}/{m}/{row}'), ``row`` counted per
    (layer, role) from 0. Roles: ``'match'`` (Hungarian cost points: one call of shape
    (1, P, 2) per image, row = image), ``'mask'`` (mask / dice loss: the matched masks of the
    batch, image-major, query-ascending on both sides) and ``'ibs'`` (the IBS masks of the
    matched thing queries, in the same order; the release samples them in one call, mmibs one
    call per image, hence rows counted per layer). A point-sampling call draws the oversampled
    candidates (n, 3P, 2) and then the uniform rest (n, P - 0.75 P, 2) for the same n rows; the
    row counter moves on after the second draw. ``auto`` mode (mmibs' loss_by_feat) tells
    'match' from 'mask' by the shape: only the matcher draws (1, P, 2).

    Args:
        seed (int): Seed of all draws.
        num_points (int): P.
        oversample_ratio (float): Candidates per point. Defaults to 3.0.
    """

    def __init__(self, seed: int, num_points: int, oversample_ratio: float = OVERSAMPLE_RATIO):
        self.seed = seed
        self.num_points = num_points
        self.num_oversampled = int(num_points * oversample_ratio)
        self.layer: Optional[int] = None
        self.role: Optional[str] = None
        self.rows: Dict[Tuple[int, str], int] = {}
        self.calls: List[Tuple[int, str, int, int, int]] = []
        self._orig = torch.rand

    def set(self, layer: Optional[int], role: Optional[str]) -> None:
        """Start drawing for ``layer`` / ``role`` ('match', 'mask', 'ibs', 'auto' or None)."""
        self.layer, self.role = layer, role

    def rand(self, *size, **kwargs) -> torch.Tensor:
        if self.role is None:
            return self._orig(*size, **kwargs)
        if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
            size = tuple(size[0])
        n, m, d = (int(s) for s in size)
        role = self.role
        if role == 'auto':
            role = 'match' if (n, m) == (1, self.num_points) else 'mask'
        key = (self.layer, role)
        row = self.rows.get(key, 0)
        dtype = kwargs.get('dtype') or torch.get_default_dtype()
        out = torch.empty(n, m, d, dtype=dtype)
        for r in range(n):
            g = _generator(self.seed, f'{self.layer}/{role}/{m}/{row + r}')
            out[r] = self._orig(m, d, generator=g, dtype=dtype)
        self.calls.append((self.layer, role, m, row, n))
        if m != self.num_oversampled:  # the candidates and the rest share their rows
            self.rows[key] = row + n
        return out.to(kwargs.get('device') or 'cpu')

    def __enter__(self) -> 'PointOracle':
        torch.rand = self.rand
        return self

    def __exit__(self, *exc) -> None:
        torch.rand = self._orig
        self.set(None, None)


#: Stuff bands (trainId, first row) and things (trainId, centre x, centre y, half axes) per scene.
SCENES = {
    'infer': dict(seed=7, things=[(13, 40, 44, 22, 10), (13, 84, 46, 16, 9), (11, 108, 38, 5, 12),
                                  (15, 62, 30, 30, 8)]),
    'train0': dict(seed=100, things=[(13, 36, 42, 20, 11), (13, 86, 46, 10, 6),
                                     (11, 64, 38, 4, 10), (17, 16, 50, 8, 6)]),
    'train1': dict(seed=101, things=[(13, 60, 40, 28, 13), (18, 104, 48, 8, 7),
                                     (12, 116, 40, 4, 10)]),
}


def scene(name: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic street scene: sky, building, sidewalk, road, vegetation, void bottom rows,
    elliptic things (later ones in front).

    Returns:
        tuple: RGB image (H, W, 3) uint8; semantic map (H, W) int64 in Cityscapes trainIds, 255
        void; instance map (H, W) int64, 0 for stuff / void, k > 0 for the k-th thing.
    """
    spec = SCENES[name]
    rng = np.random.default_rng(spec['seed'])
    sem = np.full((HEIGHT, WIDTH), 255, np.int64)
    cols = np.arange(WIDTH)
    sky_end = (18 + 4 * np.sin(cols / 11.0 + spec['seed'])).astype(int)
    rows = np.arange(HEIGHT)[:, None]
    sem[rows < sky_end[None]] = 10  # sky
    sem[(rows >= sky_end[None]) & (rows < 32)] = 2  # building
    sem[32:36] = 1  # sidewalk
    sem[36:] = 0  # road
    sem[20:32, 74:100] = 8  # vegetation
    sem[HEIGHT - 3:] = 255  # void (ego vehicle)
    inst = np.zeros((HEIGHT, WIDTH), np.int64)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    for k, (cls, cx, cy, ax, ay) in enumerate(spec['things'], start=1):
        m = ((xx - cx) / ax)**2 + ((yy - cy) / ay)**2 <= 1.0
        inst[m] = k
        sem[m] = cls
    inst[HEIGHT - 3:] = 0
    sem[HEIGHT - 3:] = 255
    palette = rng.uniform(30, 225, (256, 3))
    img = palette[np.minimum(sem, 255)] + 25 * (inst[..., None] % 3)
    img = img + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), sem, inst


def release_targets(sem: np.ndarray, inst: np.ndarray) -> Tuple[List[int], np.ndarray]:
    """The release mapper's targets: one mask per segment with > 1 pixel, stuff classes first
    (trainId order), then the things in instance order; classes are trainIds.

    Returns:
        tuple: classes (list of trainIds) and masks (N, H, W) bool.
    """
    classes, masks = [], []
    for t in range(NUM_STUFF):
        m = (sem == t) & (inst == 0)
        if m.sum() > 1:
            classes.append(t)
            masks.append(m)
    for k in range(1, int(inst.max()) + 1):
        m = inst == k
        if m.sum() > 1:
            classes.append(int(sem[m][0]))
            masks.append(m)
    return classes, np.stack(masks)
