# Copyright (c) mmibs contributors. All rights reserved.
"""mmibs' Panoptic FCN + IBS against the authors' release, without detectron2.

The fixtures under ``tests/data/parity/panoptic_fcn/`` were written by
``.dev_scripts/make_panoptic_fcn_parity_fixtures.py`` with the released code (PanopticFCN-IBS
@ 5b5e14e, detectron2 @ 02b5c4e, CPU; training in float64, inference in float32) for a narrow
variant of the released Cityscapes IBS + crop-sampling model (``SMALL``). The release's weights
are not stored: ``release_state_dict`` draws every tensor from its name, shape and ``SEED``, here
and in the fixture script alike. The tests convert them with
``tools/model_converters/panopticfcn_ibs_to_mmibs.py``, load them with ``strict=True`` into the
model of ``configs/panoptic_fcn/released/panoptic-fcn_r50_release-ckpt_cityscapes-ibs.py``
narrowed the same way, and compare:

- training (float64, a crop-sampling pair of 256x512 images): every target, every loss term and
  every parameter gradient (norm and a seeded projection; full tensors for ``FULL_GRAD_KEYS``);
  and the loss terms of a float32 model;
- inference (float32 as the release, one 256x512 image): instances (classes, scores, masks) and
  the panoptic map, pixel for pixel; and a float64 model, where a few pixels may flip;
- the converted checkpoint through ``tools/test.py`` on a one-image dataset holding that image.

Tolerances (relative unless said): float64 targets 1e-12 absolute; loss terms 2e-7 (measured
<= 6e-9: mmdet's ``weight_reduce_loss`` adds a float32 eps to ``avg_factor``), ``loss_ibs_th`` 1e-6
(measured 7e-8: mmibs' IBS loss computes in float32); gradients 1e-6 in norm and projection
(measured <= 7e-8: the IBS term's float32 reaches every gradient); float32 training: loss terms
1e-4; float32 inference: equal
instance classes, scores to 1e-4 (float32 summation order), <= 1e-5 of the instance-mask pixels
differing, <= 1e-4 of the panoptic pixels (identical on the CPU the fixtures were written on; one
pixel of 131,072 flips on another CPU, where float32 kernels round differently); float64 inference against the float32 release: >= 99.9 %
of the panoptic pixels identical; ``tools/test.py`` (float32): >= 99.5 %.
"""
import copy
import importlib.util
import json
import os.path as osp
from collections import OrderedDict
from functools import lru_cache

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURES = osp.join(REPO, 'tests', 'data', 'parity', 'panoptic_fcn')
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'panopticfcn_ibs_to_mmibs.py')
CONFIG = osp.join(REPO, 'configs', 'panoptic_fcn', 'released',
                  'panoptic-fcn_r50_release-ckpt_cityscapes-ibs.py')
H, W = 256, 512  # P7 (stride 128) is 2 x 4: the release's top-K needs >= POS_NUM (7) positions
SEED = 2023
#: the narrow model: ResNet-50 bottlenecks of width 16 (out 64-512), 32-channel FPN and heads, the
#: released INSTANCE_SCALES / 4 for 256x512 images (every level gets instances)
SMALL = dict(
    stem_channels=16,
    base_channels=16,
    channels=32,
    instance_scales=[[1, 32], [16, 64], [32, 128], [64, 256], [128, 512]],
    tensor_dim=20)
#: release tensors whose whole gradient is stored (every other one: norm and projection)
FULL_GRAD_KEYS = ('position_head.out_inst.weight', 'position_head.out_sem.weight',
                  'thing_generator.embed_extractor.weight',
                  'stuff_generator.embed_extractor.weight', 'kernel_head.out_conv.bias',
                  'feature_encoder.encode_head.encode_head_head_3.weight')
#: Cityscapes: release region channel = trainId (stuff 0-10, things 11-18); mmibs = label, things
#: first. mmibs channel r = release channel REGION_PERM[r].
REGION_PERM = [11 + r for r in range(8)] + list(range(11))
TRAINID_TO_LABEL = {t: r for r, t in enumerate(REGION_PERM)}
MEAN_RGB_ORDER = (123.675, 116.28, 103.53)  # the release's PIXEL_MEAN, applied to BGR input

# Scenes, drawn on a 128x256 grid and scaled x2: stuff bands in trainIds (10 sky, 2 building,
# 1 sidewalk, 0 road, 8 vegetation, 5 pole, 255 void) and elliptical things (thing index 0-7, cx,
# cy, semi-axis x, semi-axis y), later on top; sqrt(box area) from ~10 to ~270 px covers the five
# SMALL instance scales.
INFER_SCENE = dict(
    seed=7,
    things=[(2, 70, 92, 40, 18), (2, 150, 90, 16, 9), (0, 200, 84, 4, 10), (5, 120, 60, 95, 28),
            (7, 225, 104, 9, 9)])
TRAIN_SCENES = (
    dict(seed=100, things=[(2, 80, 90, 35, 20), (2, 175, 100, 10, 6), (0, 140, 82, 3, 9),
                           (3, 232, 82, 65, 38), (6, 38, 105, 15, 10)]),
    dict(seed=101, things=[(4, 140, 65, 85, 60), (2, 120, 82, 50, 28), (2, 38, 100, 18, 11),
                           (7, 205, 105, 8, 8), (1, 225, 90, 4, 10), (0, 15, 88, 2, 2)]),
)
STUFF_BGR = {0: (128, 64, 128), 1: (232, 35, 244), 2: (70, 70, 70), 5: (153, 153, 153),
             8: (35, 142, 107), 10: (180, 130, 70)}
THING_BGR = [(60, 20, 220), (0, 0, 255), (142, 0, 0), (70, 0, 0), (100, 60, 0), (100, 80, 0),
             (230, 0, 0), (32, 11, 119)]


def make_scene(scene: dict):
    """A small street-like scene.

    Returns:
        tuple: BGR image (H, W, 3) uint8, thing masks (N, H, W) bool, thing classes (N, ) int64
        (0-7), semantic map (H, W) uint8 in Cityscapes trainIds (255 void).
    """
    rng = np.random.default_rng(scene['seed'])
    k = H // 128  # scene coordinates are on a 128x256 grid
    sem = np.zeros((H, W), np.uint8)
    rows, cols = np.arange(H)[:, None], np.arange(W)[None]
    sky_end = (k * (38 + 6 * np.sin(cols / (23.0 * k) + scene['seed']))).astype(int)
    sem[rows < sky_end] = 10
    sem[(rows >= sky_end) & (rows < 64 * k)] = 2
    sem[64 * k:76 * k] = 1
    sem[40 * k:70 * k, (150 + scene['seed'] % 20) * k:210 * k] = 8
    sem[30 * k:76 * k, 22 * k:25 * k] = 5
    sem[H - 6 * k:] = 255
    img = rng.normal(0, 12, (H, W, 3))
    for t, bgr in STUFF_BGR.items():
        img[sem == t] += np.array(bgr, np.float64)
    yy, xx = np.mgrid[0:H, 0:W]
    masks, classes = [], []
    for cls, cx, cy, ax, ay in scene['things']:
        m = ((xx - k * cx) / (k * ax))**2 + ((yy - k * cy) / (k * ay))**2 <= 1.0
        for prev in masks:
            prev &= ~m
        masks.append(m)
        classes.append(cls)
    for m, cls in zip(masks, classes):
        sem[m] = 11 + cls
        img[m] = 0.3 * img[m] + np.array(THING_BGR[cls], np.float64)
    keep = [i for i, m in enumerate(masks) if m.any()]
    img = np.clip(img + 40, 0, 255).astype(np.uint8)
    return (img, np.stack([masks[i] for i in keep]), np.array([classes[i] for i in keep],
                                                              np.int64), sem)


def release_state_dict(keys, seed: int) -> 'OrderedDict[str, torch.Tensor]':
    """The release model's weights for the parity tests, drawn from (name, shape, seed).

    Scaled so that activations stay O(1) through the narrow network without calibration: the
    stem conv divides the mean-subtracted pixels (std ~50) down, each bottleneck's last norm
    keeps its residual branch small, frozen-BN statistics and all norm affines are random (a
    wrong mapping of any tensor shows), heads are variance-preserving, the DCNv2 offsets O(1 px).
    Three choices make the random model's panoptic map decisive (several things, stuff regions
    and void instead of one thing over the whole image): the encoder's first conv weighs the
    coordinate channels x50, so F and every mask vary with position; the thing generator's bias is
    -0.8 on every channel (F >= 0, so each thing logit drops by 0.8 sum_c F_c and masks cover
    parts of the image); the stuff generator's weights are x3 (stuff maps far from 0.5).

    Args:
        keys (list): ``[name, shape]`` of every release tensor, in state-dict order.
        seed (int): Base seed; tensor i uses ``numpy.random.default_rng([seed, i])``.

    Returns:
        OrderedDict[str, Tensor]: float64 tensors.
    """
    out = OrderedDict()
    for i, (key, shape) in enumerate(keys):
        rng = np.random.default_rng([seed, i])
        shape = tuple(shape)
        leaf = key.rsplit('.', 1)[1]
        if '.norm.' in key:
            if leaf == 'running_var':
                value = rng.uniform(0.5, 2.0, shape)
            elif leaf == 'running_mean':
                value = rng.normal(0.0, 0.2, shape)
            elif leaf == 'weight':
                low, high = (0.2, 0.5) if '.conv3.norm.' in key else (0.5, 1.5)
                value = rng.uniform(low, high, shape)
            else:
                value = rng.normal(0.0, 0.2, shape)
        elif len(shape) == 4:
            fan_in = int(np.prod(shape[1:]))
            if 'stem.conv1' in key:
                std = np.sqrt(2.0 / fan_in) / 50.0
            elif 'offset_mask_conv' in key:
                std = 0.5 / np.sqrt(fan_in)
            elif ('out_inst' in key or 'out_sem' in key or 'embed_extractor' in key
                  or 'fpn_' in key or 'top_block' in key or 'out_conv' in key):
                std = 1.0 / np.sqrt(fan_in)
            else:
                std = np.sqrt(2.0 / fan_in)
            value = rng.normal(0.0, std, shape)
        elif 'out_inst.bias' in key or 'out_sem.bias' in key:
            value = rng.normal(-2.0, 1.0, shape)
        elif key == 'thing_generator.embed_extractor.bias':
            value = np.full(shape, -0.8)
        else:
            value = rng.normal(0.0, 0.1, shape)
        if key == 'feature_encoder.encode_head.encode_head_head_1.weight':
            value[:, -2:] *= 50.0  # the CoordConv channels (rows, columns in [-1, 1])
        elif key == 'stuff_generator.embed_extractor.weight':
            value *= 3.0
        out[key] = torch.from_numpy(np.asarray(value, dtype=np.float64))
    return out


def projection(key: str, shape: tuple, index: int) -> torch.Tensor:
    """The seeded random direction on which a gradient is projected (release layout)."""
    rng = np.random.default_rng([SEED + 1, index])
    return torch.from_numpy(rng.standard_normal(shape))


# ------------------------------------------------------------------------------- helpers
@lru_cache(maxsize=None)
def converter():
    spec = importlib.util.spec_from_file_location('panopticfcn_ibs_to_mmibs', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=None)
def fixtures():
    with open(osp.join(FIXTURES, 'spec.json')) as f:
        spec = json.load(f)
    data = dict(np.load(osp.join(FIXTURES, 'fixtures.npz')))
    return spec, data


def small_config():
    """The released Cityscapes IBS config, narrowed as ``SMALL``."""
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    m = cfg.model
    c = SMALL['channels']
    m.backbone.update(base_channels=SMALL['base_channels'], init_cfg=None)
    assert SMALL['stem_channels'] == SMALL['base_channels']  # mmdet: stem = base by default
    m.neck.update(in_channels=[4 * SMALL['base_channels'] * 2**i for i in range(4)],
                  out_channels=c)
    hm = m.panoptic_head.head_module
    hm.feature_encoder.update(in_channels=c, fpn_channels=c, out_channels=c)
    hm.position_head.update(in_channels=c, feat_channels=c)
    hm.kernel_head.update(in_channels=c, feat_channels=c)
    m.train_cfg.target_generator.update(
        instance_scales=[tuple(s) for s in SMALL['instance_scales']],
        max_instances=SMALL['tensor_dim'])
    return cfg


def converted_state_dict():
    spec, _ = fixtures()
    release = release_state_dict(spec['keys'], spec['seed'])
    state, dataset = converter().convert_state_dict(release)
    assert dataset == 'cityscapes'
    return release, state


def build_model(dtype=torch.float64):
    from mmengine.registry import DefaultScope

    from mmibs.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(small_config().model)
    _, state = converted_state_dict()
    model.to(dtype)  # before loading: the float64 values must not pass through float32
    model.load_state_dict(state, strict=True)  # every tensor, nothing left over
    return model.eval()


def normalized(img: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    """The release's normaliser: (BGR - PIXEL_MEAN in RGB order) / 1, shape (3, H, W)."""
    x = torch.from_numpy(img.transpose(2, 0, 1).astype(np.float64))
    return ((x - torch.tensor(MEAN_RGB_ORDER, dtype=torch.float64).view(3, 1, 1))).to(dtype)


def sample(masks=None, classes=None, sem=None):
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData, PixelData
    s = DetDataSample(metainfo=dict(img_shape=(H, W), ori_shape=(H, W), pad_shape=(H, W),
                                    batch_input_shape=(H, W), scale_factor=(1.0, 1.0)))
    if masks is not None:
        boxes = []
        for m in masks:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        s.gt_instances = InstanceData(
            labels=torch.from_numpy(classes), masks=BitmapMasks(masks.astype(np.uint8), H, W),
            bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float32)))
        labels = np.full(sem.shape, 255, np.int64)
        for t, label in TRAINID_TO_LABEL.items():
            labels[sem == t] = label
        s.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(labels)[None])
    return s


def release_panoptic_as_mmibs(pan: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Release segment ids -> mmibs ``label + instance_id * 1000`` (void = 19); the release's
    k-th thing segment is mmibs instance k (both paint things in the same order)."""
    out = np.full(pan.shape, 19, np.int64)
    k = 0
    for sid, trainid, isthing, _ in segments:
        label = TRAINID_TO_LABEL[int(trainid)]
        if isthing:
            k += 1
            label += 1000 * k
        out[pan == int(sid)] = label
    return out


# --------------------------------------------------------------------------------- tests
@pytest.fixture(scope='module')
def trained():
    """One float64 training step of mmibs on the fixture pair: losses, targets, gradients."""
    _, data = fixtures()
    torch.manual_seed(0)
    model = build_model(torch.float64)
    samples, inputs = [], []
    for b, scene in enumerate(TRAIN_SCENES):
        img, masks, classes, sem = make_scene(scene)
        assert np.array_equal(img, data[f'train_image_{b}'])  # the scene is rebuilt exactly
        inputs.append(normalized(img))
        samples.append(sample(masks, classes, sem))
    head = model.panoptic_head
    generator = head.target_generator
    recorded = []

    class Recording:
        """The target generator, keeping what it returns."""

        def __getattr__(self, name):
            return getattr(generator, name)

        def __call__(self, *args, **kwargs):
            recorded.append(generator(*args, **kwargs))
            return recorded[-1]

    head.target_generator = Recording()
    model.train()
    try:
        losses = model.loss(torch.stack(inputs), samples)
        sum(losses.values()).backward()
    finally:
        head.target_generator = generator
        model.eval()
    return model, losses, recorded


def test_converted_release_weights_load_strictly_into_the_small_config():
    """Every release tensor maps, every mmibs tensor is provided (strict load), and the region
    rows are permuted from trainId order to mmibs' things-first order."""
    release, state = converted_state_dict()
    model = build_model()
    head = 'panoptic_head.head_module.position_head'
    torch.testing.assert_close(state[f'{head}.out_region.weight'],
                               release['position_head.out_sem.weight'][REGION_PERM])
    torch.testing.assert_close(state[f'{head}.out_center.weight'],
                               release['position_head.out_inst.weight'])
    assert sum(not k.endswith('num_batches_tracked') for k in state) == len(release)
    assert set(state) == set(model.state_dict())


def test_training_targets_equal_the_release(trained):
    """float64 targets of both images on every level; 1e-12 absolute."""
    _, data = fixtures()
    _, _, recorded = trained
    for lvl in range(len(SMALL['instance_scales'])):
        center = np.stack([r[lvl]['center_heatmap'].numpy() for r in recorded])
        np.testing.assert_allclose(center, data[f'tgt_center_{lvl}'], rtol=0, atol=1e-12)
        region = np.stack([r[lvl]['region_scores'].numpy() for r in recorded])
        np.testing.assert_allclose(region, data[f'tgt_sem_scores_{lvl}'][:, REGION_PERM], rtol=0,
                                   atol=1e-12)
        for b, targets in enumerate(recorded):
            t = targets[lvl]
            np.testing.assert_allclose(t['thing_masks'].numpy(), data[f'tgt_inst_{lvl}_{b}'],
                                       rtol=0, atol=1e-12)
            wl = t['center_heatmap'].shape[-1]
            index = (t['thing_centers'][:, 1] * wl + t['thing_centers'][:, 0]).numpy()
            np.testing.assert_array_equal(index, data[f'tgt_index_{lvl}_{b}'])
            np.testing.assert_array_equal(t['thing_labels'].numpy(), data[f'tgt_class_{lvl}_{b}'])
            assert len(t['stuff_labels']) == int(data[f'tgt_num_stuff_{lvl}_{b}'])
    # the fixture covers every level with things
    assert all(len(data[f'tgt_class_{lvl}_0']) + len(data[f'tgt_class_{lvl}_1']) > 0
               for lvl in range(5))


def test_every_loss_term_equals_the_release(trained):
    """loss_pos_th / loss_pos_st / loss_seg_th / loss_seg_st to 2e-7 relative (float64; mmdet's
    ``weight_reduce_loss`` divides by ``avg_factor`` + float32 eps, a relative 1.2e-7 / avg_factor
    at most); loss_ibs_th to 1e-6 (mmibs' IBS loss computes in float32)."""
    spec, data = fixtures()
    _, losses, _ = trained
    reference = dict(zip(spec['loss_names'], data['loss_values']))
    assert set(reference) == set(losses) == {
        'loss_pos_th', 'loss_pos_st', 'loss_seg_th', 'loss_seg_st', 'loss_ibs_th'
    }
    diffs = {k: abs(float(losses[k]) - v) / v for k, v in reference.items()}
    print('relative loss differences:', {k: f'{v:.1e}' for k, v in diffs.items()})
    for name, diff in diffs.items():
        assert reference[name] > 0, name
        assert diff <= (1e-6 if name == 'loss_ibs_th' else 2e-7), (name, diff)


def test_float32_training_losses_match_the_release():
    """A float32 model on the same pair: every loss term within 1e-4 of the float64 release."""
    spec, data = fixtures()
    model = build_model(torch.float32)
    inputs, samples = [], []
    for scene in TRAIN_SCENES:
        img, masks, classes, sem = make_scene(scene)
        inputs.append(normalized(img, torch.float32))
        samples.append(sample(masks, classes, sem))
    model.train()
    with torch.no_grad():
        losses = model.loss(torch.stack(inputs), samples)
    for name, value in zip(spec['loss_names'], data['loss_values']):
        assert losses[name].dtype == torch.float32
        assert float(losses[name]) == pytest.approx(value, rel=1e-4), name


def test_every_gradient_equals_the_release(trained):
    """Every release parameter's gradient (123), mapped to mmibs (region rows un-permuted): norm
    and a seeded projection to 1e-6 relative, FULL_GRAD_KEYS to 1e-6 of their norm (measured:
    <= 7e-8, median 2e-8, float32 rounding of the IBS term)."""
    spec, data = fixtures()
    model, _, _ = trained
    params = dict(model.named_parameters())
    conv = converter()
    compared = 0
    for i, (key, shape) in enumerate(spec['keys']):
        if np.isnan(data['grad_norm'][i]):
            continue
        target = conv.release_to_mmibs(key)
        grad = params[target].grad
        assert grad is not None, (key, target)
        if target in conv.REGION_KEYS:
            unpermuted = torch.empty_like(grad)
            unpermuted[REGION_PERM] = grad
            grad = unpermuted
        norm = data['grad_norm'][i]
        assert float(grad.norm()) == pytest.approx(norm, rel=1e-6), key
        proj = float((grad * projection(key, tuple(shape), i)).sum())
        assert proj == pytest.approx(data['grad_projection'][i], rel=1e-6, abs=1e-6 * norm), key
        if key in FULL_GRAD_KEYS:
            ref = torch.from_numpy(data[f'grad__{key}'])
            assert float((grad - ref).norm()) <= 1e-6 * float(ref.norm()), key
        compared += 1
    trainable = [k for k, p in params.items() if p.requires_grad]
    assert compared == len(trainable) == sum(~np.isnan(data['grad_norm']))


def predict(model, dtype):
    _, data = fixtures()
    img = data['infer_image']
    assert np.array_equal(img, make_scene(INFER_SCENE)[0])
    with torch.no_grad():
        return model.predict(normalized(img, dtype)[None], [sample()])[0]


def test_float32_inference_equals_the_release():
    """float32, as the release infers: instances (classes equal, scores to 1e-4, <= 1e-5 of the
    mask pixels differing) and the panoptic map (<= 1e-4 of the pixels differing: identical on the
    fixtures' CPU, one pixel flipped on another), with things, stuff and void in it."""
    _, data = fixtures()
    result = predict(build_model(torch.float32), torch.float32)
    pan = result.pred_panoptic_seg.sem_seg[0].numpy()
    reference = release_panoptic_as_mmibs(data['pan_seg'], data['pan_segments'])
    assert pan.shape == reference.shape
    assert (pan != reference).mean() <= 1e-4, f'{(pan != reference).sum()} pixels differ'
    is_thing = data['pan_segments'][:, 2].astype(bool)
    assert is_thing.sum() >= 2 and (~is_thing).sum() >= 2 and (reference == 19).any()
    ins = result.pred_instances
    np.testing.assert_array_equal(ins.labels.numpy(), data['inst_classes'])
    np.testing.assert_allclose(ins.scores.numpy(), data['inst_scores'], rtol=1e-4, atol=0)
    masks = np.unpackbits(data['inst_masks'], axis=-1)[..., :W].astype(bool)
    assert ins.masks.shape == masks.shape
    assert (ins.masks.numpy() != masks).mean() <= 1e-5  # measured 4 of 1e7 pixels (at 0.5)


def test_float64_inference_matches_the_release():
    """The float64 model against the float32 release (its kernel fusion does not run in
    float64): the same instance classes, >= 99.9 % of the panoptic pixels identical."""
    _, data = fixtures()
    result = predict(build_model(torch.float64), torch.float64)
    pan = result.pred_panoptic_seg.sem_seg[0].numpy()
    reference = release_panoptic_as_mmibs(data['pan_seg'], data['pan_segments'])
    assert (pan == reference).mean() >= 0.999
    np.testing.assert_array_equal(result.pred_instances.labels.numpy(), data['inst_classes'])


def test_released_config_preprocessing_is_the_releases():
    """The released config's DetDataPreprocessor gives the release's normalised input (float32)."""
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    _, data = fixtures()
    kwargs = copy.deepcopy(small_config().model.data_preprocessor)
    kwargs.pop('type')
    img = data['infer_image']
    out = DetDataPreprocessor(**kwargs)(
        dict(inputs=[torch.from_numpy(img.transpose(2, 0, 1).copy())], data_samples=[sample()]),
        training=False)
    torch.testing.assert_close(out['inputs'][0], normalized(img, torch.float32), rtol=0,
                               atol=1e-5)


def _small_config_text(data: dict) -> str:
    """A config over the released Cityscapes IBS one: the small model, one val image."""
    c, b = SMALL['channels'], SMALL['base_channels']
    return f"""
_base_ = [{CONFIG!r}]
model = dict(
    backbone=dict(base_channels={b}, init_cfg=None),
    neck=dict(in_channels={[4 * b * 2**i for i in range(4)]}, out_channels={c}),
    panoptic_head=dict(head_module=dict(
        feature_encoder=dict(in_channels={c}, fpn_channels={c}, out_channels={c}),
        position_head=dict(in_channels={c}, feat_channels={c}),
        kernel_head=dict(in_channels={c}, feat_channels={c}))))
data_root = {data['data_root']!r}
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file={data['val_ann_file']!r},
                 data_prefix={data['val_data_prefix']!r}))
test_dataloader = val_dataloader
val_evaluator = dict(type='PanopticQualityMetric', ann_file={data['val_ann_path']!r},
                     seg_prefix={data['val_seg_dir']!r})
test_evaluator = val_evaluator
"""


@pytest.mark.slow
def test_converted_checkpoint_runs_in_tools_test_with_the_release_outputs(tmp_path):
    """Release checkpoint file -> the converter's command line -> tools/test.py on a one-image
    Cityscapes-format set holding the fixture image (PNG, as Cityscapes ships): the dumped
    panoptic map matches the release's (float32: >= 99.5 % of the pixels) with the same instance
    classes."""
    import glob
    import pickle
    import subprocess
    import sys

    import mmcv

    from projects.toy_cityscapes.synthetic import make_converted_cityscapes
    spec, data = fixtures()
    src, ckpt = tmp_path / 'model_final.pth', tmp_path / 'converted.pth'
    torch.save(dict(model=release_state_dict(spec['keys'], spec['seed']), iteration=65000), src)
    env = dict(__import__('os').environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    subprocess.run([sys.executable, CONVERTER, str(src), str(ckpt)], cwd=REPO, env=env,
                   check=True)
    cs = make_converted_cityscapes(str(tmp_path / 'cityscapes'), 0, 1, H, W)
    (image, ) = glob.glob(osp.join(cs['data_root'], cs['val_data_prefix']['img'], '**', '*.png'),
                          recursive=True)
    mmcv.imwrite(data['infer_image'], image)  # BGR, lossless
    cfg = tmp_path / 'small.py'
    cfg.write_text(_small_config_text(cs))
    out = tmp_path / 'preds.pkl'
    proc = subprocess.run([
        sys.executable, 'tools/test.py',
        str(cfg),
        str(ckpt), '--out',
        str(out), '--work-dir',
        str(tmp_path / 'work')
    ],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert 'PQ' in proc.stdout + proc.stderr
    with open(out, 'rb') as f:
        (pred, ) = pickle.load(f)
    pan = np.asarray(pred['pred_panoptic_seg']['sem_seg'])[0]
    reference = release_panoptic_as_mmibs(data['pan_seg'], data['pan_segments'])
    assert (pan == reference).mean() >= 0.995
    np.testing.assert_array_equal(np.asarray(pred['pred_instances']['labels']),
                                  data['inst_classes'])
