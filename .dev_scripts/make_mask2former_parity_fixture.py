# Copyright (c) mmibs contributors. All rights reserved.
"""Write tests/data/parity/mask2former/: what the released Mask2Former + IBS computes on a small
model.

The tests (tests/test_parity/test_mask2former_parity.py) check that mmibs, fed the same weights
through tools/model_converters/mask2former_ibs_to_mmibs.py, computes the same; they need no
detectron2. This script needs the authors' release and detectron2, CPU only.

Environment: a venv with the project's stack plus detectron2 (built from source, CPU ops) and the
release unpacked beside it (DdeGeus/Mask2Former-IBS @ 7a4bc20, facebookresearch/detectron2
@ 02b5c4e). Run from the repository root, with mmibs from this checkout on the path::

    RELEASE_ROOT=/path/to/Mask2Former-IBS PYTHONPATH=$PWD \\
        /path/to/reference-venv/bin/python .dev_scripts/make_mask2former_parity_fixture.py

(about a minute on 2 cores). The release is never edited; what it needs to run on a CPU without
torchvision is patched at run time, and listed in meta.json: stub modules for torchvision
(detectron2 imports torchvision.ops at import time; Mask2Former calls none of it), for the
MSDeformAttn CUDA extension (the release then takes its own PyTorch fallback
``ms_deform_attn_core_pytorch``) and for timm (imported by the unused Swin backbone), and
``Tensor.cuda`` as the identity inside the criterion (it calls ``.cuda()`` before ``.to(device)``).

What it does:

1. builds the released Cityscapes crop sampling + IBS model
   (configs/cityscapes/panoptic-segmentation/maskformer2_R50_bs16_90k_ibs_cropsampling.yaml)
   shrunk by ``SMALL_RELEASE_CFG`` (ResNet-18, 32 channels, 12 queries, 3 decoder layers,
   256 points), with the weights of ``release_weights(shapes, seed)``, batch-norm statistics
   calibrated on the test image, and the class head and last mask-embedding layer made decisive
   (``spread_predictions``; these tensors are stored, 1.7k numbers);
2. inference on the 64x128 ``scene('infer')`` image, eval mode: per-layer class and mask
   logits, the panoptic map and segments, the instance output;
3. one training forward/backward on the pair ``scene('train0')``, ``scene('train1')``, batch norm
   in train mode (the Cityscapes recipe's SyncBN on one process), every random point of the
   matching, mask/dice and IBS losses drawn by ``PointOracle``: the per-layer Hungarian
   matching, every loss term of every layer (weighted as the release sums them) and a few
   gradients.

Outputs: ``meta.json`` (names and shapes of the release tensors, seeds, scales, settings, patches,
losses, matching) and ``arrays.npz`` (batch-norm statistics, inputs, predictions, gradients),
together well under 1 MB.
"""
import json
import os
import os.path as osp
import sys
import types
from collections import OrderedDict

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tests', 'test_parity'))
RELEASE_ROOT = os.environ.get('RELEASE_ROOT',
                              osp.expanduser('~/.cache/mmibs-reference/Mask2Former-IBS'))
sys.path.insert(0, RELEASE_ROOT)
OUT = osp.join(REPO, 'tests', 'data', 'parity', 'mask2former')
RELEASE_YAML = ('configs/cityscapes/panoptic-segmentation/'
                'maskformer2_R50_bs16_90k_ibs_cropsampling.yaml')

import mask2former_parity_common as common  # noqa: E402

WEIGHT_SEED = 2024
POINT_SEED = 11
SCALES = {}  # see spread_predictions: the class head and last mask layer are stored instead
GRAD_KEYS = [
    'backbone.stem.conv1.weight', 'backbone.res3.0.conv1.norm.weight',
    'backbone.res2.1.conv2.weight',
    'sem_seg_head.pixel_decoder.transformer.encoder.layers.0.self_attn.sampling_offsets.weight',
    'sem_seg_head.pixel_decoder.mask_features.weight',
    'sem_seg_head.predictor.transformer_cross_attention_layers.0.multihead_attn.in_proj_weight',
    'sem_seg_head.predictor.query_feat.weight', 'sem_seg_head.predictor.class_embed.weight',
    'sem_seg_head.predictor.mask_embed.layers.2.weight'
]
PATCHES = []


def install_cpu_patches():
    """Run-time stubs the release needs here (see the module docstring)."""
    try:
        import torchvision  # noqa: F401
        import torchvision.ops  # noqa: F401
    except Exception:  # a CUDA torchvision next to a CPU torch raises RuntimeError
        for name in [m for m in sys.modules if m.split('.')[0] == 'torchvision']:
            del sys.modules[name]

        def unavailable(*args, **kwargs):
            raise RuntimeError('torchvision stub: not available here')

        tv, ops, boxes = (types.ModuleType(n)
                          for n in ('torchvision', 'torchvision.ops', 'torchvision.ops.boxes'))
        for n in ('batched_nms', 'nms', 'box_iou', 'box_area', 'remove_small_boxes',
                  'clip_boxes_to_image'):
            setattr(boxes, n, unavailable)
        for n in ('deform_conv2d', 'nms', 'roi_align', 'batched_nms', 'roi_pool'):
            setattr(ops, n, unavailable)
        ops.RoIPool = type('RoIPool', (torch.nn.Module, ), {})
        ops.boxes, tv.ops, tv.__version__ = boxes, ops, '0.0.0+stub'
        tv._is_tracing = lambda: False  # mask2former/utils/misc.py nested_tensor_from_tensor_list
        sys.modules.update({'torchvision': tv, 'torchvision.ops': ops,
                            'torchvision.ops.boxes': boxes})
        PATCHES.append('torchvision stub (detectron2 imports torchvision.ops; unused here)')
    msda = types.ModuleType('MultiScaleDeformableAttention')
    msda.ms_deform_attn_forward = msda.ms_deform_attn_backward = None
    sys.modules['MultiScaleDeformableAttention'] = msda
    PATCHES.append('MultiScaleDeformableAttention stub: MSDeformAttn takes its own CPU fallback '
                   'ms_deform_attn_core_pytorch (ops/modules/ms_deform_attn.py)')
    timm, tm, tl = (types.ModuleType(n) for n in ('timm', 'timm.models', 'timm.models.layers'))
    tl.DropPath = type('DropPath', (torch.nn.Module, ), {})
    tl.to_2tuple, tl.trunc_normal_ = (lambda x: (x, x)), None
    timm.models, tm.layers = tm, tl
    sys.modules.update({'timm': timm, 'timm.models': tm, 'timm.models.layers': tl})
    PATCHES.append('timm stub (imported by the unused Swin backbone)')
    torch.Tensor.cuda = lambda self, *a, **k: self
    PATCHES.append('Tensor.cuda -> identity (criterion.py calls .cuda() before .to(device))')


def release_cfg():
    from detectron2.config import get_cfg
    from detectron2.projects.deeplab import add_deeplab_config
    from mask2former import add_maskformer2_config
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    cfg.merge_from_file(osp.join(RELEASE_ROOT, RELEASE_YAML))
    opts = []
    for key, value in common.SMALL_RELEASE_CFG.items():
        opts += [key, str(value)]
    cfg.merge_from_list(opts + ['MODEL.WEIGHTS', '', 'MODEL.DEVICE', 'cpu'])
    cfg.freeze()
    return cfg


@torch.no_grad()
def calibrate_batch_norm(model, image):
    """Running statistics = batch statistics of ``image`` at every BN layer (activations stay
    O(1) through the random backbone). Returns name -> tensor of the new statistics."""
    hooks = []

    def set_stats(mod, inputs):
        x = inputs[0]
        mod.running_mean.copy_(x.mean((0, 2, 3)))
        mod.running_var.copy_(x.var((0, 2, 3), unbiased=False))

    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            hooks.append(m.register_forward_pre_hook(set_stats))
    model.eval()
    model.backbone(image)
    for h in hooks:
        h.remove()
    return {k: v.clone() for k, v in model.state_dict().items()
            if k.endswith(('running_mean', 'running_var'))}


@torch.no_grad()
def spread_predictions(model, img, mask_logit_std=8.0, class_logit_std=20.0, mask_shift=2.0,
                       thing_bias=20.0):
    """Make the random model decisive and its queries different, so the panoptic map has several
    segments: the last mask-embedding layer is projected off the image-mean mask feature and off
    the queries' common embedding (masks differing between queries), rescaled to the given logit
    std and shifted down by ``mask_shift`` std (smaller, less overlapping masks); the class head
    is projected off the queries' mean decoder output and rescaled to its logit std, with
    ``thing_bias`` added to the thing classes' logits.
    Returns the edited tensors (stored in the fixture, they replace the seeded ones)."""
    rec = {}
    pd = model.sem_seg_head.pixel_decoder
    predictor = model.sem_seg_head.predictor
    orig = pd.forward_features

    def forward_features(*args, **kwargs):
        out = orig(*args, **kwargs)
        rec['mask_features'] = out[0]
        return out

    pd.forward_features = forward_features
    hooks = [
        predictor.decoder_norm.register_forward_hook(lambda m, i, o: rec.__setitem__('h', o)),
        predictor.mask_embed.layers[-1].register_forward_pre_hook(
            lambda m, i: rec.__setitem__('z', i[0]))
    ]
    image = torch.as_tensor(np.ascontiguousarray(img.transpose(2, 0, 1)))
    model.eval()
    model([dict(image=image, height=common.HEIGHT, width=common.WIDTH)])
    for h in hooks:
        h.remove()
    pd.forward_features = orig
    h = rec['h'][:, 0]  # (Q, C): the last decoder_norm call, the final layer (sequence first)
    v = h.mean(0) / h.mean(0).norm()
    cls = predictor.class_embed
    cls.weight.copy_(cls.weight @ (torch.eye(v.numel()) - torch.outer(v, v)))
    cls.weight.mul_(class_logit_std / (h @ cls.weight.t()).std())
    cls.bias.zero_()
    cls.bias[common.NUM_STUFF:common.NUM_CLASSES] = thing_bias  # trainIds 11-18: things
    mf = rec['mask_features'][0]  # (C, H / 4, W / 4)
    u = mf.mean((1, 2)) / mf.mean((1, 2)).norm()
    lin = predictor.mask_embed.layers[-1]
    lin.weight.copy_((torch.eye(u.numel()) - torch.outer(u, u)) @ lin.weight)
    lin.weight.mul_(mask_logit_std / torch.einsum('oc,chw->ohw', lin.weight, mf).std())
    lin.bias.copy_(-(lin.weight @ rec['z'][0].mean(0)))  # z: (B, Q, C) -> the query mean
    # shift every mask logit down by ~mask_shift std (through the mean-feature direction u):
    # each mask keeps the tail of its own direction, so masks overlap less
    lin.bias.sub_(mask_shift * mask_logit_std * u / (mf.mean((1, 2)) @ u))
    prefix = {id(cls): 'sem_seg_head.predictor.class_embed.',
              id(lin): 'sem_seg_head.predictor.mask_embed.layers.2.'}
    return {prefix[id(m)] + n: p.detach().clone() for m in (cls, lin)
            for n, p in m.named_parameters()}


def run_inference(model, img):
    rec = {}
    hook = model.sem_seg_head.predictor.register_forward_hook(
        lambda m, i, o: rec.__setitem__('pred', o))
    image = torch.as_tensor(np.ascontiguousarray(img.transpose(2, 0, 1)))
    model.eval()
    with torch.no_grad():
        out = model([dict(image=image, height=common.HEIGHT, width=common.WIDTH)])[0]
    hook.remove()
    pred = rec['pred']
    cls = torch.stack([a['pred_logits'][0] for a in pred['aux_outputs']] +
                      [pred['pred_logits'][0]])  # (L, Q, K + 1), release class order
    masks = torch.stack([a['pred_masks'][0] for a in pred['aux_outputs']] +
                        [pred['pred_masks'][0]])  # (L, Q, H / 4, W / 4)
    pan, segments = out['panoptic_seg']
    inst = out['instances']
    return dict(
        cls=cls.numpy(), masks=masks.numpy(), pan=pan.numpy().astype(np.int32),
        segments=[dict(id=int(s['id']), label=common.TRAINID_TO_LABEL[int(s['category_id'])],
                       isthing=bool(s['isthing'])) for s in segments],
        inst_labels=np.array([common.TRAINID_TO_LABEL[int(c)] for c in inst.pred_classes]),
        inst_scores=inst.scores.numpy(),
        inst_masks=np.packbits(inst.pred_masks.numpy().astype(bool), axis=-1))


def training_batch():
    from detectron2.structures import Instances
    pair = []
    for name in ('train0', 'train1'):
        img, sem, inst = common.scene(name)
        classes, masks = common.release_targets(sem, inst)
        instances = Instances((common.HEIGHT, common.WIDTH))
        instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
        instances.gt_masks = torch.from_numpy(masks)
        pair.append(dict(image=torch.as_tensor(np.ascontiguousarray(img.transpose(2, 0, 1))),
                         instances=instances, height=common.HEIGHT, width=common.WIDTH))
    return [pair]


def run_training(model, num_layers):
    """One forward/backward with the point oracle; returns losses, matching and gradients."""
    import mask2former.modeling.criterion as criterion_module
    crit = model.criterion
    oracle = common.PointOracle(POINT_SEED, common.NUM_POINTS)
    state = dict(layer=None, matches={}, masks_calls=0)
    orig_match, orig_get_loss = crit.matcher.forward, crit.get_loss
    orig_sampler = criterion_module.get_uncertain_point_coords_with_randomness
    targets_rec = {}
    orig_prepare = model.prepare_targets

    def prepare_targets(targets, images):
        out = orig_prepare(targets, images)
        targets_rec['targets'] = out
        return out

    def match(outputs, targets):
        # criterion.forward matches the final layer first, then the aux layers 0..L-2
        layer = num_layers - 1 if not state['matches'] else len(state['matches']) - 1
        oracle.set(layer, 'match')
        indices = orig_match(outputs, targets)
        oracle.set(None, None)
        state['matches'][layer] = [(q.tolist(), t.tolist()) for q, t in indices]
        return indices

    def get_loss(loss, outputs, targets, indices, num_masks, i=None):
        state['layer'] = num_layers - 1 if i == crit.num_dec_layers else i
        state['masks_calls'] = 0
        return orig_get_loss(loss, outputs, targets, indices, num_masks, i)

    def sampler(*args, **kwargs):
        # loss_masks samples the mask-loss points first, then the IBS points
        role = 'mask' if state['masks_calls'] == 0 else 'ibs'
        state['masks_calls'] += 1
        oracle.set(state['layer'], role)
        try:
            return orig_sampler(*args, **kwargs)
        finally:
            oracle.set(None, None)

    crit.matcher.forward, crit.get_loss = match, get_loss
    criterion_module.get_uncertain_point_coords_with_randomness = sampler
    model.prepare_targets = prepare_targets
    try:
        model.train()
        with oracle:
            oracle.set(None, None)
            losses = model(training_batch())
        total = sum(losses.values())
        model.zero_grad()
        total.backward()
    finally:
        crit.matcher.forward, crit.get_loss = orig_match, orig_get_loss
        criterion_module.get_uncertain_point_coords_with_randomness = orig_sampler
        model.prepare_targets = orig_prepare
        model.eval()
    targets = targets_rec['targets']
    matching = {}
    for layer, per_image in state['matches'].items():
        matching[str(layer)] = [
            sorted([q, common.TRAINID_TO_LABEL[int(targets[b]['labels'][t])]]
                   for q, t in zip(qs, ts)) for b, (qs, ts) in enumerate(per_image)
        ]
    params = dict(model.named_parameters())
    grads = {k: params[k].grad.numpy() for k in GRAD_KEYS}
    return {k: float(v) for k, v in losses.items()}, matching, grads, oracle.calls


def main():
    install_cpu_patches()
    torch.set_num_threads(1)
    from detectron2.modeling import build_model
    cfg = release_cfg()
    torch.manual_seed(0)
    model = build_model(cfg)
    shapes = OrderedDict((k, list(v.shape)) for k, v in model.state_dict().items())
    model.load_state_dict(common.release_weights(shapes, WEIGHT_SEED, SCALES), strict=True)
    img, _, _ = common.scene('infer')
    image = torch.as_tensor(np.ascontiguousarray(img.transpose(2, 0, 1))).float()
    normalized = (image - model.pixel_mean) / model.pixel_std
    bn_stats = calibrate_batch_norm(model, normalized[None])
    spread = spread_predictions(model, img)
    num_layers = cfg.MODEL.MASK_FORMER.DEC_LAYERS
    infer = run_inference(model, img)
    losses, matching, grads, calls = run_training(model, num_layers)
    os.makedirs(OUT, exist_ok=True)
    arrays = {f'stored/{k}': v.numpy() for k, v in {**bn_stats, **spread}.items()}
    arrays.update({f'infer/{k}': v for k, v in infer.items() if isinstance(v, np.ndarray)})
    arrays.update({f'grad/{k}': v for k, v in grads.items()})
    np.savez_compressed(osp.join(OUT, 'arrays.npz'), **arrays)
    meta = OrderedDict(
        release='DdeGeus/Mask2Former-IBS @ 7a4bc20 on facebookresearch/detectron2 @ 02b5c4e',
        release_yaml=RELEASE_YAML,
        small_release_cfg=common.SMALL_RELEASE_CFG,
        weight_seed=WEIGHT_SEED,
        point_seed=POINT_SEED,
        weight_scales=SCALES,
        num_layers=num_layers,
        torch=torch.__version__,
        patches=PATCHES,
        release_shapes=shapes,
        segments=infer['segments'],
        losses=losses,
        matching=matching,
        oracle_calls=calls,
        grad_keys=GRAD_KEYS)
    with open(osp.join(OUT, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(dict(segments=infer['segments'], losses=losses), indent=1))
    print('instances', infer['inst_labels'].tolist(), infer['inst_scores'].round(3).tolist())
    sizes = {n: osp.getsize(osp.join(OUT, n)) for n in ('arrays.npz', 'meta.json')}
    print('wrote', OUT, sizes)


if __name__ == '__main__':
    main()
