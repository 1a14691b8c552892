#!/usr/bin/env python
"""Write the Panoptic FCN parity fixtures (tests/data/parity/panoptic_fcn/) with the released code.

The fixtures hold what the authors' release (DdeGeus/PanopticFCN-IBS @ 5b5e14e on detectron2
@ 02b5c4e) computes for a SMALL variant of its Cityscapes IBS + crop-sampling model, so that
``tests/test_parity/test_panoptic_fcn_parity.py`` can check mmibs against it without detectron2.

The small model is the release's ``configs/cityscapes/PanopticFCN-R50-cityscapes-ibs-cropsampling
.yaml`` (caffe-style ResNet-50 bottlenecks, FPN P2-P7, semantic FPN, DCNv2 position head, CoordConv
kernel head and encoder, 8 things / 19 region channels in trainId order, IBS with the ``i XOR 1``
partner) narrowed: stem 16 and bottleneck width 16 (res2-res5 out 64-512), FPN / heads / encoder
32 channels, INSTANCE_SCALES divided by 4 for 256x512 images (``SMALL`` below). Its weights are
not the release's random init: every tensor is drawn by ``release_state_dict`` of the test module
from (name, shape, seed), so the test rebuilds them from ``spec.json`` instead of storing them.

What is stored (``spec.json`` and ``fixtures.npz``, float64 unless noted):

- the release state-dict names and shapes, the seed, the small-model settings;
- one 256x512 BGR test image and the release's inference (float32: its kernel fusion does not run
  in float64): panoptic map (segment ids) and segments (id, trainId, is-thing, score), instance
  classes, scores and masks;
- a crop-sampling pair of 256x512 images (masks, classes, trainId semantic maps) and, from one
  float64 training step of the release: its targets (center heatmaps, thing masks / centers /
  classes per level, region score maps, stuff slot counts), every loss term, the full gradients
  of a few tensors, and the norm and a seeded random projection of every tensor's gradient.

Run it with the reference environment (a venv with the project's stack, detectron2 @ 02b5c4e built
from source with CPU ops, and the release unpacked beside it; see docs/parity.md). ``--harness``
names the directory of the reference harness's ``release_cpu_patches.py``, which this repository
does not ship: the CPU run-time patches the release needs here (a torchvision stub and a CPU DCNv2
through mmcv's kernel). From the repository root:

    REF=$HOME/.cache/mmibs-reference
    PYTHONPATH=$PWD $REF/venv/bin/python .dev_scripts/make_panoptic_fcn_parity_fixtures.py \\
        --release $REF/PanopticFCN-IBS --harness /path/to/reference/harness

It takes about a minute on 2 cores and rewrites tests/data/parity/panoptic_fcn/ (under 1 MB).
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import sys

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
OUT = osp.join(REPO, 'tests', 'data', 'parity', 'panoptic_fcn')
TEST_MODULE = osp.join(REPO, 'tests', 'test_parity', 'test_panoptic_fcn_parity.py')
RELEASE_YAML = 'configs/cityscapes/PanopticFCN-R50-cityscapes-ibs-cropsampling.yaml'


def load_test_module():
    """The test module: ``SMALL``, ``release_state_dict``, the scenes and the gradient keys."""
    spec = importlib.util.spec_from_file_location('pfcn_parity', TEST_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def release_cfg(release_root: str, small: dict):
    """The release's Cityscapes IBS + crop-sampling config, narrowed to the small model."""
    from detectron2.config import get_cfg
    from panopticfcn import add_panopticfcn_config
    cfg = get_cfg()
    add_panopticfcn_config(cfg)  # as the release's train.py:setup
    cfg.merge_from_file(osp.join(release_root, RELEASE_YAML))
    cfg.MODEL.WEIGHTS = ''
    cfg.MODEL.DEVICE = 'cpu'
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = small['stem_channels']
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = small['base_channels']
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 4 * small['base_channels']
    cfg.MODEL.FPN.OUT_CHANNELS = small['channels']
    cfg.MODEL.SEMANTIC_FPN.CONVS_DIM = small['channels']
    cfg.MODEL.POSITION_HEAD.CONVS_DIM = small['channels']
    cfg.MODEL.KERNEL_HEAD.CONVS_DIM = small['channels']
    cfg.MODEL.FEATURE_ENCODER.CONVS_DIM = small['channels']
    cfg.MODEL.KERNEL_HEAD.INSTANCE_SCALES = tuple(tuple(s) for s in small['instance_scales'])
    cfg.MODEL.TENSOR_DIM = small['tensor_dim']
    cfg.freeze()
    return cfg


def build_release(cfg):
    """detectron2's build_model after the metadata registration of the release's train.py."""
    import contextlib
    import io

    from data.cityscapes.cityscapes_panoptic_separated_sampling import \
        register_all_cityscapes_panoptic_newsampling
    from detectron2.data import DatasetCatalog
    from detectron2.modeling import build_model
    if 'cityscapes_fine_panoptic_train_separated' not in DatasetCatalog.list():
        with contextlib.redirect_stdout(io.StringIO()):
            register_all_cityscapes_panoptic_newsampling(cfg)
    model = build_model(cfg)
    model.eval()
    return model


def to_release_input(img, masks=None, classes=None, sem=None):
    from detectron2.structures import BitMasks, Instances
    h, w = img.shape[:2]
    out = dict(image=torch.as_tensor(np.ascontiguousarray(img.transpose(2, 0, 1))), height=h,
               width=w)
    if masks is not None:
        inst = Instances((h, w))
        bm = BitMasks(torch.from_numpy(masks))
        inst.gt_masks = bm
        inst.gt_boxes = bm.get_bounding_boxes()  # the mapper recomputes boxes from masks
        inst.gt_classes = torch.from_numpy(classes)
        out.update(instances=inst, sem_seg=torch.from_numpy(sem.astype(np.int64)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ref = os.environ.get('REF', osp.expanduser('~/.cache/mmibs-reference'))
    ap.add_argument('--release', default=osp.join(ref, 'PanopticFCN-IBS'))
    ap.add_argument('--harness', default=osp.join(osp.dirname(REPO), 'shared', 'reference',
                                                  'harness'),
                    help='folder of release_cpu_patches.py (torchvision stub, CPU DCNv2)')
    ap.add_argument('--out', default=OUT)
    args = ap.parse_args()
    sys.path[:0] = [args.harness, args.release]
    from release_cpu_patches import install_torchvision_shim, patch_detectron2_mdcn
    install_torchvision_shim()
    patch_detectron2_mdcn('mmcv')
    torch.set_num_threads(1)
    tm = load_test_module()
    small, seed = tm.SMALL, tm.SEED

    cfg = release_cfg(args.release, small)
    rel = build_release(cfg)
    keys = [(k, list(v.shape)) for k, v in rel.state_dict().items()]
    weights = tm.release_state_dict(keys, seed)
    rel.load_state_dict(weights, strict=True)  # float64 values rounded to float32

    arrays = {}
    # ------------------------------------------- inference (float32: the release's kernel fusion
    # casts its claim matrix to float32, so its inference does not run in float64)
    img = tm.make_scene(tm.INFER_SCENE)[0]
    arrays['infer_image'] = img
    with torch.no_grad():
        out = rel([to_release_input(img)])[0]
    pan, segments = out['panoptic_seg']
    arrays['pan_seg'] = pan.numpy().astype(np.int32)
    arrays['pan_segments'] = np.array(
        [[s['id'], s['category_id'], int(s['isthing']), s.get('score', -1.0)] for s in segments],
        dtype=np.float64).reshape(-1, 4)
    inst = out['instances']
    if len(inst.scores) and isinstance(inst.scores, torch.Tensor):
        arrays['inst_scores'] = inst.scores.numpy()
        arrays['inst_classes'] = inst.pred_classes.numpy().astype(np.int64)
        arrays['inst_masks'] = np.packbits(inst.pred_masks.tensor.numpy(), axis=-1)
    # ---------------------------------------------------------------- training (float64)
    torch.set_default_dtype(torch.float64)  # the release's targets are made in the default dtype
    rel.load_state_dict(weights, strict=True)
    rel.double()
    rel.load_state_dict(weights, strict=True)  # the float64 values, unrounded
    mean = torch.tensor(cfg.MODEL.PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(cfg.MODEL.PIXEL_STD).view(3, 1, 1)
    rel.normalizer = lambda x: (x - mean) / std  # the release's closes over float32 tensors
    pair = {}
    for b, scene in enumerate(tm.TRAIN_SCENES):
        timg, masks, classes, sem = tm.make_scene(scene)
        arrays[f'train_image_{b}'] = timg
        pair[b] = to_release_input(timg, masks, classes, sem)
    holder = {}
    generate = rel.get_ground_truth.generate

    def recording_generate(*a, **k):
        holder['gt'] = generate(*a, **k)
        return holder['gt']

    rel.get_ground_truth.generate = recording_generate
    rel.train()
    losses = rel([pair])
    sum(losses.values()).backward()
    rel.eval()
    names = sorted(losses)
    arrays['loss_values'] = np.array([float(losses[k]) for k in names])
    gt = holder['gt']
    for lvl in range(len(small['instance_scales'])):
        arrays[f'tgt_center_{lvl}'] = gt['center'][lvl].numpy()
        arrays[f'tgt_sem_scores_{lvl}'] = gt['sem_scores'][lvl].numpy()
        for b in range(2):
            n = int(gt['index_mask'][lvl][b].sum())
            arrays[f'tgt_inst_{lvl}_{b}'] = gt['inst'][lvl][b, :n].numpy()
            arrays[f'tgt_index_{lvl}_{b}'] = gt['index'][lvl][b, :n].numpy().astype(np.int64)
            arrays[f'tgt_class_{lvl}_{b}'] = gt['class'][lvl][b, :n].numpy().astype(np.int64)
            arrays[f'tgt_num_stuff_{lvl}_{b}'] = np.array(int(gt['sem_index'][lvl][b].sum()))
    params = dict(rel.named_parameters())
    norms, projections = [], []
    for i, (key, _) in enumerate(keys):
        grad = params[key].grad if key in params else None
        if grad is None:
            norms.append(np.nan)
            projections.append(np.nan)
            continue
        norms.append(float(grad.norm()))
        projections.append(float((grad * tm.projection(key, tuple(grad.shape), i)).sum()))
    arrays['grad_norm'] = np.array(norms)
    arrays['grad_projection'] = np.array(projections)
    for key in tm.FULL_GRAD_KEYS:
        arrays[f'grad__{key}'] = params[key].grad.numpy()

    os.makedirs(args.out, exist_ok=True)
    np.savez_compressed(osp.join(args.out, 'fixtures.npz'), **arrays)
    spec = dict(seed=seed, small=small, keys=keys, loss_names=names,
                release='DdeGeus/PanopticFCN-IBS@5b5e14e ' + RELEASE_YAML,
                detectron2='02b5c4e', torch=torch.__version__, numpy=np.__version__)
    with open(osp.join(args.out, 'spec.json'), 'w') as f:
        json.dump(spec, f, indent=0)
    size = sum(osp.getsize(osp.join(args.out, n)) for n in os.listdir(args.out))
    print(f'wrote {args.out}: {size / 1e6:.2f} MB; losses ' +
          ', '.join(f'{k} {float(losses[k]):.6g}' for k in names) +
          f'; {len(segments)} segments ({sum(s["isthing"] for s in segments)} things)')


if __name__ == '__main__':
    main()
