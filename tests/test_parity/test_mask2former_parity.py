# Copyright (c) mmibs contributors. All rights reserved.
"""mmibs' Mask2Former + IBS against the authors' release, on a small model (no detectron2 needed).

tests/data/parity/mask2former/ holds what the release computed
(.dev_scripts/make_mask2former_parity_fixture.py, which documents how it was made): the small
release model's tensor names and shapes with the seed of their values (``release_weights``) and
the calibrated batch-norm statistics, and its outputs. Here the same weights go through the
converter (tools/model_converters/mask2former_ibs_to_mmibs.py) into the model of
tests/data/configs/mask2former_r18-parity_release-small_cityscapes-64x128.py, and mmibs must
reproduce:

- inference (eval mode, 64x128): the class logits (columns permuted to mmibs' things-first order)
  and mask logits of every prediction layer to 5e-5 of the layer's largest |logit| (logits up to
  ~230; measured difference 0 on the CPU the fixture was written on, <= 1.3e-5 on another); the panoptic map pixel for pixel (same category, same segment
  partition; 6 segments, 2 of them instances of one thing class); the instance output (labels and
  masks identical, scores to ``rtol=1e-4``; measured 2e-13);
- training (one forward/backward of a crop pair, batch norm in train mode as the Cityscapes
  recipe trains it): the Hungarian matching of every layer (query -> class, exactly), every loss
  term of every layer (cls, mask, dice and IBS, weighted as both sum them) to ``rtol=1e-4``
  (measured <= 2.2e-7 on the fixture's CPU; on another, <= 2.6e-6 and 1.4e-5 for the
  importance-sampled IBS terms), and 9 gradients: those of the head to 1e-4 of their largest entry
  (measured <= 1.7e-6 on the fixture's CPU, <= 2.2e-5 on another), those that flow back through
  the deformable encoder (its sampling offsets and the backbone) to 2e-2 in relative norm. That
  part of the gradient is ill-conditioned, not wrong: a 1e-6 relative perturbation of the input
  images moves it by 0.28 % (sampling offsets) to 0.56 % (backbone) on one CPU, and another CPU's
  float32 rounding moves it as much (0.23-0.53 % against the fixture), while the head's gradients
  move by < 4e-5.

Tolerances therefore hold across CPUs: float32 kernels round differently on different machines
(the fixture was written on one, CI may run on another).

Random points: every ``torch.rand`` draw of the point-sampled matching, mask/dice and IBS losses
goes through ``PointOracle`` on both sides, so the points are the same function of (layer, kind,
row); the importance-sampled part then follows from each side's own logits.

``test_tools_test_runs_the_converted_checkpoint`` runs tools/test.py on the converted checkpoint
and compares its panoptic output with the release's.
"""
import importlib.util
import json
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import mask2former_parity_common as common

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURE = osp.join(REPO, 'tests', 'data', 'parity', 'mask2former')
SMALL_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                        'mask2former_r18-parity_release-small_cityscapes-64x128.py')
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'mask2former_ibs_to_mmibs.py')
INSTANCE_OFFSET = 1000
LOGIT_TOL = 5e-5  # of the layer's largest |logit|
# gradients that flow back through the deformable encoder (release names; module docstring)
ILL_CONDITIONED = ('backbone.', 'sem_seg_head.pixel_decoder.transformer.encoder.')
LOSS_NAMES = (('loss_ce', 'loss_cls'), ('loss_mask', 'loss_mask'), ('loss_dice', 'loss_dice'),
              ('loss_mask_ibs', 'loss_ibs'))


@pytest.fixture(scope='module')
def fixture():
    with open(osp.join(FIXTURE, 'meta.json')) as f:
        meta = json.load(f)
    arrays = dict(np.load(osp.join(FIXTURE, 'arrays.npz')))
    return meta, arrays


def release_state_dict(meta, arrays):
    """The fixture's release weights: seeded values, then the stored tensors (batch-norm
    statistics, the sharpened class head and last mask-embedding layer)."""
    state = common.release_weights(meta['release_shapes'], meta['weight_seed'],
                                   meta['weight_scales'])
    for key in arrays:
        if key.startswith('stored/'):
            state[key[len('stored/'):]] = torch.from_numpy(arrays[key])
    return state


@pytest.fixture(scope='module')
def converted(fixture, tmp_path_factory):
    """Release checkpoint as detectron2 writes it -> the converter -> an mmengine checkpoint."""
    meta, arrays = fixture
    folder = tmp_path_factory.mktemp('m2f_parity')
    src = str(folder / 'model_final.pth')
    torch.save(dict(model=release_state_dict(meta, arrays), iteration=0), src)
    spec = importlib.util.spec_from_file_location('mask2former_ibs_to_mmibs', CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    dst = str(folder / 'mmibs.pth')
    converter.convert(src, dst, config=SMALL_CONFIG)
    return dst


@pytest.fixture
def model(converted):
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint

    from mmibs.registry import MODELS
    cfg = Config.fromfile(SMALL_CONFIG)
    with DefaultScope.overwrite_default_scope('mmdet'):
        net = MODELS.build(cfg.model)
    net = revert_sync_batchnorm(net)  # as mmengine's runner does on one process
    load_checkpoint(net, converted, map_location='cpu', strict=True)
    return net.eval()


def sample(name, with_gt):
    """BGR CHW image tensor and a DetDataSample (labels things first)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData, PixelData
    img, sem, inst = common.scene(name)
    h, w = common.HEIGHT, common.WIDTH
    s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                    batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
    if with_gt:
        labels, masks, boxes = [], [], []
        for k in range(1, int(inst.max()) + 1):
            m = inst == k
            if m.sum() > 1:
                ys, xs = np.nonzero(m)
                labels.append(common.TRAINID_TO_LABEL[int(sem[m][0])])
                masks.append(m)
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        sem_labels = np.full_like(sem, 255)
        for trainid, label in common.TRAINID_TO_LABEL.items():
            sem_labels[sem == trainid] = label
        s.gt_instances = InstanceData(
            labels=torch.tensor(labels),
            masks=BitmapMasks(np.stack(masks).astype(np.uint8), h, w),
            bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float32)))
        s.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem_labels)[None])
    image = torch.as_tensor(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)))
    return image, s


def test_fixture_is_small_and_complete(fixture):
    meta, arrays = fixture
    size = sum(osp.getsize(osp.join(FIXTURE, n)) for n in ('meta.json', 'arrays.npz'))
    assert size < 5 * 2**20
    assert meta['num_layers'] == 4 and len(meta['matching']) == 4
    assert any(s['isthing'] for s in meta['segments'])  # the panoptic map has things and stuff
    assert any(not s['isthing'] for s in meta['segments'])


def test_inference_per_layer(fixture, model):
    """Class and mask logits of all 4 prediction layers (to 5e-5 of their largest), panoptic
    map, instances."""
    _, arrays = fixture
    image, s = sample('infer', with_gt=False)
    rec = {}
    hook = model.panoptic_head.register_forward_hook(lambda m, i, o: rec.__setitem__('out', o))
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[image], data_samples=[s]), False)
        result = model.predict(data['inputs'], data['data_samples'])[0]
    hook.remove()
    cls_layers, mask_layers = rec['out']
    release_cls = arrays['infer/cls'][..., common.CLASS_PERM]  # release columns -> mmibs order
    for layer in range(len(cls_layers)):
        for name, ours, release in (('class', cls_layers[layer][0].numpy(), release_cls[layer]),
                                    ('mask', mask_layers[layer][0].numpy(),
                                     arrays['infer/masks'][layer])):
            np.testing.assert_allclose(ours, release, rtol=0,
                                       atol=LOGIT_TOL * np.abs(release).max(),
                                       err_msg=f'{name} logits, layer {layer}')
    check_panoptic(fixture, result.pred_panoptic_seg.sem_seg[0].numpy())
    check_instances(fixture, result.pred_instances)


def check_panoptic(fixture, pan_mmibs):
    """Same category at every pixel, same segments (a bijection between segment ids)."""
    meta, arrays = fixture
    pan_release = arrays['infer/pan']
    label_of = {s['id']: s['label'] for s in meta['segments']}
    category_release = np.full(pan_release.shape, common.NUM_CLASSES)
    for seg_id, label in label_of.items():
        category_release[pan_release == seg_id] = label
    np.testing.assert_array_equal(pan_mmibs % INSTANCE_OFFSET, category_release)
    pairs = set(zip(pan_release.ravel().tolist(), pan_mmibs.ravel().tolist()))
    assert len({a for a, _ in pairs}) == len({b for _, b in pairs}) == len(pairs)
    things = {b for a, b in pairs if a in label_of and label_of[a] < common.NUM_THINGS}
    assert all(b >= INSTANCE_OFFSET for b in things)  # things carry an instance id


def check_instances(fixture, pred):
    """Same instances: labels, scores (rtol 1e-4) and masks, compared after sorting both sides
    by (score, label, mask) (the top-k is unsorted on both sides, empty masks score 0)."""
    _, arrays = fixture
    masks_r = np.unpackbits(arrays['infer/inst_masks'], axis=-1, count=common.WIDTH).astype(bool)
    release = sorted(zip(arrays['infer/inst_scores'].tolist(), arrays['infer/inst_labels'].tolist(),
                         masks_r), key=lambda x: (-round(x[0], 4), x[1], x[2].tobytes()))
    ours = sorted(zip(pred.scores.tolist(), pred.labels.tolist(), pred.masks.numpy().astype(bool)),
                  key=lambda x: (-round(x[0], 4), x[1], x[2].tobytes()))
    assert len(ours) == len(release)
    for (score_m, label_m, mask_m), (score_r, label_r, mask_r) in zip(ours, release):
        assert label_m == label_r
        assert score_m == pytest.approx(score_r, rel=1e-4, abs=1e-7)
        np.testing.assert_array_equal(mask_m, mask_r)


def test_training_losses_matching_and_gradients(fixture, model):
    """Matching exactly; every loss term rtol 1e-4; the head's gradients to 1e-4 x their max,
    those through the deformable encoder to 2e-2 in relative norm (module docstring)."""
    meta, arrays = fixture
    head = model.panoptic_head
    oracle = common.PointOracle(meta['point_seed'], common.NUM_POINTS)
    state = dict(layer=-1, ibs_layer=0, matches={})
    orig_single, orig_targets = head._loss_by_feat_single, head._get_targets_single
    orig_ibs = head.loss_ibs.forward

    def single(*args, **kwargs):
        state['layer'] += 1
        oracle.set(state['layer'], 'auto')
        try:
            return orig_single(*args, **kwargs)
        finally:
            oracle.set(None, None)

    def targets_single(*args, **kwargs):
        out = orig_targets(*args, **kwargs)
        labels, mask_weights = out[0], out[3]
        queries = torch.nonzero(mask_weights > 0).flatten().tolist()
        state['matches'].setdefault(state['layer'], []).append(
            sorted([q, int(labels[q])] for q in queries))
        return out

    def ibs_forward(*args, **kwargs):
        state['ibs_layer'] += 1  # called for layers 1..L-1 (the release's i > 0)
        oracle.set(state['ibs_layer'], 'ibs')
        try:
            return orig_ibs(*args, **kwargs)
        finally:
            oracle.set(None, None)

    head._loss_by_feat_single, head._get_targets_single = single, targets_single
    head.loss_ibs.forward = ibs_forward
    images, samples = zip(*(sample(n, with_gt=True) for n in ('train0', 'train1')))
    try:
        model.train()
        with oracle:
            oracle.set(None, None)
            data = model.data_preprocessor(
                dict(inputs=list(images), data_samples=list(samples)), True)
            losses = model.loss(data['inputs'], data['data_samples'])
        model.zero_grad()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
    finally:
        del head._loss_by_feat_single, head._get_targets_single, head.loss_ibs.forward
        model.eval()
    num_layers = meta['num_layers']
    for layer in range(num_layers):
        assert state['matches'][layer] == meta['matching'][str(layer)], f'matching, layer {layer}'
        for release_name, mmibs_name in LOSS_NAMES:
            r_key = release_name if layer == num_layers - 1 else f'{release_name}_{layer}'
            m_key = mmibs_name if layer == num_layers - 1 else f'd{layer}.{mmibs_name}'
            if release_name == 'loss_mask_ibs' and layer == 0:  # no IBS on the query-only layer
                assert r_key not in meta['losses'] and m_key not in losses
                continue
            assert losses[m_key].item() == pytest.approx(meta['losses'][r_key], rel=1e-4), m_key
    assert len(meta['losses']) == sum(1 for k in losses if 'loss' in k)
    params = dict(model.named_parameters())
    rename = load_rename()
    for key in meta['grad_keys']:
        grad_r = arrays[f'grad/{key}']
        if key.startswith('sem_seg_head.predictor.class_embed.'):
            grad_r = grad_r[common.CLASS_PERM]
        grad_m = params[rename(key)].grad.numpy()
        scale = np.abs(grad_r).max()
        assert scale > 0, key
        if key.startswith(ILL_CONDITIONED):
            error = np.linalg.norm(grad_m - grad_r) / np.linalg.norm(grad_r)
            assert error <= 2e-2, f'{key}: relative error {error:.2e}'
        else:
            np.testing.assert_allclose(grad_m, grad_r, rtol=0, atol=1e-4 * scale, err_msg=key)


def load_rename():
    spec = importlib.util.spec_from_file_location('mask2former_ibs_to_mmibs', CONVERTER)
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    return converter.release_to_mmibs


def test_tools_test_runs_the_converted_checkpoint(fixture, converted, tmp_path):
    """tools/test.py (runner test loop, data pipeline, PQ metric) on the converted checkpoint:
    its panoptic output for the 64x128 image equals the release's."""
    from projects.toy_cityscapes.synthetic import make_converted_cityscapes
    data = make_converted_cityscapes(str(tmp_path / 'cs'), 0, 1, common.HEIGHT, common.WIDTH)
    with open(data['val_ann_path']) as f:
        ann = json.load(f)
    (image_info, ) = ann['images']
    img, _, _ = common.scene('infer')
    img_path = osp.join(data['data_root'], data['val_data_prefix']['img'], image_info['file_name'])
    Image.fromarray(img).save(img_path, format='PNG')  # lossless, whatever the extension says
    out = tmp_path / 'results.pkl'
    root = data['data_root']
    options = [
        f'test_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.ann_file={data["val_ann_file"]}',
        f'test_dataloader.dataset.data_prefix.img={data["val_data_prefix"]["img"]}',
        f'test_dataloader.dataset.data_prefix.seg={data["val_data_prefix"]["seg"]}',
        f'test_evaluator.ann_file={data["val_ann_path"]}',
        f'test_evaluator.seg_prefix={data["val_seg_dir"]}',
    ]
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', SMALL_CONFIG, converted, '--work-dir',
         str(tmp_path / 'work'), '--out', str(out), '--cfg-options', *options],
        cwd=REPO,
        capture_output=True,
        text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    with open(out, 'rb') as f:
        (result, ) = pickle.load(f)
    pan = result['pred_panoptic_seg']['sem_seg']
    pan = pan.numpy() if isinstance(pan, torch.Tensor) else np.asarray(pan)
    check_panoptic(fixture, pan[0])
