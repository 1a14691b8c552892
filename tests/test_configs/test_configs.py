# Copyright (c) mmibs contributors. All rights reserved.
"""Every config under configs/ loads, builds and carries the paper's values.

For each config file (``_base_`` excluded): ``Config.fromfile``; the full R50 model is built with
``init_cfg=None`` on the backbone (0.3-0.5 s each, so no shrinking is needed); the optimiser
wrapper (``build_optim_wrapper``) and the parameter schedulers (``PARAM_SCHEDULERS``) are built
and stepped; the train dataset is built on a tiny converted synthetic dataset and one item is
drawn. Its resize / crop sizes are divided by 8 for that draw only (the 128x256 synthetic images
would otherwise be blown up to up to 6192x12384 by crop sampling); the values asserted are the
config's own. The expected values come from ``config_expectations.RECIPES`` (the paper's
numbers, written out independently) combined with the file name (GPUs x images per GPU, IBS,
ablation variant).

``test_config_pipeline_feeds_its_model`` runs two items of six configs' own train pipelines
(Mask2Former and Panoptic FCN, crop sampling, instance-only, random partner; SOLOv2 and CondInst on
Cityscapes instances) through one training
iteration of the config's model shrunk to ResNet-18. The toy experiments' configs
(projects/toy_cityscapes/configs) only have to build, the -ibs ones to have IBS and the
-cropsamp- one crop sampling.

``test_r50_cityscapes_crop_ibs_config_trains_and_predicts_512x1024`` trains the shipped
Cityscapes crop-based Panoptic FCN + IBS config (R50, deformable position head) for one iteration
on two 512x1024 images and predicts one; the config without IBS is checked to differ only in
``loss_ibs`` (``test_ibs_configs_differ_from_their_baseline_only_in_ibs``).
"""
import copy
import glob
import os.path as osp
from functools import lru_cache

import mmdet
import numpy as np
import pytest
import torch
from config_expectations import RECIPES, RELEASED_TEST, expected_values, parse_name
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, DefaultScope

from mmibs.registry import DATASETS, MODELS
from mmibs.testing import synthetic_panoptic_sample
from projects.toy_cityscapes.synthetic import make_converted_cityscapes, make_converted_vistas

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, REPO).split(osp.sep))
TOY_CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'projects', 'toy_cityscapes', 'configs', '*.py')))
DATA_SHRINK = 8

# The experiments of the issue, named as the lead fixed them: the test fails when one is missing
# or renamed, and when a config is added without an expectation.
EXPECTED_FILES = {
    'panoptic_fcn': [
        'panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024.py',
        'panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024-ibs.py',
        'panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024.py',
        'panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024-ibs.py',
        'panoptic-fcn_r50_4xb1-100k_cityscapes-full-1024x2048.py',
        'panoptic-fcn_r50_2xb2-100k_cityscapes-full-1024x2048-ibs.py',
        'panoptic-fcn_r50_8xb4-150k_mapillary-crop-1024x1024.py',
        'panoptic-fcn_r50_8xb4-150k_mapillary-crop-1024x1024-ibs.py',
        'panoptic-fcn_r50_8xb4-150k_mapillary-cropsamp-1024x1024.py',
        'panoptic-fcn_r50_8xb4-150k_mapillary-cropsamp-1024x1024-ibs.py',
        'panoptic-fcn_r50_8xb1-150k_mapillary-full-2048.py',
        'panoptic-fcn_r50_4xb2-150k_mapillary-full-2048-ibs.py',
    ],
    'panoptic_fcn/ablations': [
        f'panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024-ibs-{v}.py'
        for v in ('lambda0.5', 'lambda2', 'lambda5', 'c64', 'partner-random', 'partner-all')
    ],
    # evaluation of the authors' checkpoints (tools/model_converters/panopticfcn_ibs_to_mmibs.py)
    'panoptic_fcn/released': [
        f'panoptic-fcn_r50_release-ckpt_{d}.py'
        for d in ('cityscapes', 'cityscapes-ibs', 'mapillary', 'mapillary-ibs')
    ],
    'mask2former': [
        'mask2former_r50_8xb2-90k_cityscapes-crop-512x1024.py',
        'mask2former_r50_8xb2-90k_cityscapes-crop-512x1024-ibs.py',
        'mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024.py',
        'mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024-ibs.py',
        'mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024-ibs-lambda100.py',
        'mask2former_r50_8xb2-300k_mapillary-crop-1024x1024.py',
        'mask2former_r50_8xb2-300k_mapillary-crop-1024x1024-ibs.py',
        'mask2former_r50_8xb2-300k_mapillary-cropsamp-1024x1024.py',
        'mask2former_r50_8xb2-300k_mapillary-cropsamp-1024x1024-ibs.py',
        'mask2former_r50_8xb2-300k_mapillary-instance-crop-1024x1024.py',
        'mask2former_r50_8xb2-300k_mapillary-instance-crop-1024x1024-ibs.py',
    ],
    'mask2former/released': sorted(RELEASED_TEST),
    # IBS beyond the paper: MaskFormer on Mask2Former's Cityscapes crop recipe
    'maskformer': [
        'maskformer_r50_8xb2-90k_cityscapes-crop-512x1024.py',
        'maskformer_r50_8xb2-90k_cityscapes-crop-512x1024-ibs.py',
    ],
    # Cityscapes instance segmentation, not in the paper: IBS on SOLOv2 and CondInst
    'solov2': [
        'solov2_r50_8xb4-65k_cityscapes-instance-crop-512x1024.py',
        'solov2_r50_8xb4-65k_cityscapes-instance-crop-512x1024-ibs.py',
    ],
    'condinst': [
        'condinst_r50_8xb4-65k_cityscapes-instance-crop-512x1024.py',
        'condinst_r50_8xb4-65k_cityscapes-instance-crop-512x1024-ibs.py',
    ],
}
#: Instance-segmentation networks whose IBS lives in the mask head (``model.mask_head``).
INSTANCE_NETS = {
    'solov2': dict(head='SOLOV2Head', ibs_head='SOLOV2IBSHead'),
    'condinst': dict(head='CondInstMaskHead', ibs_head='CondInstIBSMaskHead'),
}
#: Test-only configs of the Mask2Former released checkpoints (the Panoptic FCN ones are
#: RELEASED_CONFIGS): checked by test_mask2former_released_checkpoint_configs.
RELEASED = [c for c in CONFIGS if '/released/' in c and 'mask2former' in c]


@lru_cache(maxsize=None)
def _load(rel_path: str) -> Config:
    return Config.fromfile(osp.join(REPO, rel_path))


def load_config(rel_path: str) -> Config:
    """A private copy of the parsed config (parsing is cached: ~0.3 s per file)."""
    return copy.deepcopy(_load(rel_path))


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    return dict(
        cityscapes=make_converted_cityscapes(str(tmp_path_factory.mktemp('cs')), 2, 0, 128, 256),
        mapillary=make_converted_vistas(
            str(tmp_path_factory.mktemp('vistas')), 2, 0, 128, 256, instances=True))


# ---------------------------------------------------------------------------------------------
# helpers: pipeline look-ups and the data swap
# ---------------------------------------------------------------------------------------------
def train_dataset_cfg(cfg: Config) -> dict:
    """The outer train dataset (``CropSamplingDataset`` or the plain one)."""
    return cfg.train_dataloader.dataset


def train_pipeline(cfg: Config) -> list:
    return list(train_dataset_cfg(cfg).pipeline)


def find_transforms(pipeline: list, *types: str) -> list:
    return [t for t in pipeline if t['type'] in types]


def shrink_sizes(obj, factor: int):
    """Divide every resize / crop size of a dataloader dict by ``factor``."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key in ('scale', 'crop_size', 'scales', 'short_edge_range',
                       'short_edge_choices') and isinstance(value, (list, tuple)):
                value = type(value)(max(1, int(v) // factor) for v in value)
            elif key in ('side_min', 'side_max', 'overall_max', 'max_size') and value:
                value = value // factor
            out[key] = shrink_sizes(value, factor)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(shrink_sizes(v, factor) for v in obj)
    return obj


def point_to_synthetic(dataloader: dict, data: dict, instance: bool) -> dict:
    """Swap the data root, annotation file and prefixes for the converted synthetic ones."""
    outer = dataloader['dataset']
    inner = outer.get('dataset', outer)
    inner.update(
        data_root=data['data_root'],
        ann_file=data['train_instance_file' if instance else 'train_ann_file'],
        data_prefix=dict(data['train_data_prefix']))
    if instance:
        inner['data_prefix'] = dict(img=inner['data_prefix']['img'])
    return dataloader


def draw_train_samples(cfg: Config, synthetic: dict, index: int = 0, seed: int = 0) -> list:
    """Build the train dataset on synthetic data (sizes / DATA_SHRINK) and draw item ``index``
    with the random augmentations seeded by ``seed``."""
    loader = shrink_sizes(cfg.train_dataloader.to_dict(), DATA_SHRINK)
    inner = loader['dataset'].get('dataset', loader['dataset'])
    data = synthetic['mapillary' if 'Mapillary' in inner['type'] else 'cityscapes']
    point_to_synthetic(loader, data, instance='Instance' in inner['type'])
    torch.manual_seed(seed)
    np.random.seed(seed)
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(loader['dataset'])
        item = dataset[index]
    return item if isinstance(item, list) else [item]


def build_model(cfg: Config):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None  # no download in tests
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(model_cfg)


def build_schedulers(cfg: Config, wrapper) -> list:
    schedulers = cfg.param_scheduler
    schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
    return [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper)) for s in schedulers]


def naive_lr(base: float, step: int, max_iters: int, warmup_iters: int) -> float:
    """detectron2's WarmupPolyLR (the releases' ``build_solver.py``), closed form: linear warm-up
    from 0.001 x base over ``warmup_iters`` (factor 1 from ``warmup_iters`` on), times poly
    (power 0.9) decay over ``max_iters``."""
    alpha = step / warmup_iters if step < warmup_iters else 1.0
    warm = 0.001 * (1 - alpha) + alpha
    return base * warm * (1 - step / max_iters)**0.9


RELEASED_DIR = f'{osp.sep}released{osp.sep}'


def is_experiment(rel_path: str) -> bool:
    """A training experiment of the paper (not a released-checkpoint config)."""
    return RELEASED_DIR not in rel_path


# ---------------------------------------------------------------------------------------------
# coverage
# ---------------------------------------------------------------------------------------------
def test_every_experiment_has_its_config_and_every_config_an_expectation():
    found = {}
    for rel in CONFIGS:
        folder = osp.dirname(osp.relpath(rel, 'configs')).replace(osp.sep, '/')
        found.setdefault(folder, set()).add(osp.basename(rel))
    for folder, names in EXPECTED_FILES.items():
        assert found.get(folder, set()) == set(names), folder
    assert set(found) == set(EXPECTED_FILES), sorted(found)
    experiments = set()
    for rel in CONFIGS:
        if is_experiment(rel):
            expected_values(osp.basename(rel))  # raises on names without a recipe
            fields = parse_name(osp.basename(rel))
            experiments.add((fields['model'], fields['dataset_key'], fields['mode'], fields['ibs']))
    # every recipe of the supplementary exists with and without IBS
    assert experiments == {k + (ibs, ) for k in RECIPES for ibs in (False, True)}


# ---------------------------------------------------------------------------------------------
# per-config value checks
# ---------------------------------------------------------------------------------------------
def check_batch_and_schedule(cfg: Config, exp: dict, name: str) -> None:
    crop_sampling = train_dataset_cfg(cfg).type == 'CropSamplingDataset'
    assert crop_sampling == ('-cropsamp-' in name)
    images_per_gpu = cfg.train_dataloader.batch_size * (2 if crop_sampling else 1)
    assert images_per_gpu == exp['images_per_gpu']
    assert cfg.num_gpus == exp['gpus']
    assert cfg.get('images_per_gpu', cfg.get('pairs_per_gpu', 0) * 2) == exp['images_per_gpu']
    assert exp['gpus'] * exp['images_per_gpu'] == exp['images']  # the paper's batch
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=exp['images'])
    if crop_sampling:
        assert cfg.train_dataloader.collate_fn == dict(type='pair_collate')
        assert tuple(train_dataset_cfg(cfg).scales) == (32, 64, 128, 256, 512)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == exp['max_iters'] == exp['max_iters_in_name']


def check_resize(resize: dict, expected: dict) -> None:
    assert resize['type'] == expected['type']
    if expected['type'] == 'RandomResize':
        assert tuple(resize['scale']) == expected['scale'] and resize['keep_ratio']
        assert tuple(resize['ratio_range']) == expected['ratio_range']
    elif 'choices' in expected:
        low, high, count = expected['choices']
        choices = resize['short_edge_choices']
        assert (min(choices), max(choices), len(set(choices))) == (low, high, count)
        assert resize['max_size'] == expected['max_size']
    else:
        assert tuple(resize['short_edge_range']) == expected['short_edge_range']
        assert resize['max_size'] == expected['max_size']


def check_pipeline(cfg: Config, exp: dict) -> None:
    pipeline = train_pipeline(cfg)
    flips = find_transforms(pipeline, 'RandomFlip')
    assert len(flips) == 1 and flips[0]['prob'] == 0.5
    crops = find_transforms(pipeline, 'RandomCrop', 'RandomCropWithInstance')
    if exp['crop'] is None:
        assert not crops
    else:
        assert len(crops) == 1 and tuple(crops[0]['crop_size']) == exp['crop'][::-1]  # (w, h)
        assert tuple(cfg.crop_size) == exp['crop']
    if 'crop_sampling' in exp:
        (resize, ) = find_transforms(pipeline, 'ResizeToSegmentScale')
        assert {k: resize[k] for k in exp['crop_sampling']} == exp['crop_sampling']
        assert crops[0]['type'] == 'RandomCropWithInstance'
        assert crops[0]['box_source'] == 'sampled_segment'
        check_resize(resize['stuff_resize'], exp['resize'])
    else:
        (resize, ) = find_transforms(pipeline, 'RandomResize', 'RandomShortestEdgeResize')
        check_resize(resize, exp['resize'])
    if 'color_aug' in exp:  # Mask2Former: the release's augmentation and target filter
        check_mask2former_pipeline(pipeline, exp)


def check_mask2former_pipeline(pipeline: list, exp: dict) -> None:
    """detectron2's SSD colour augmentation (not PhotoMetricDistortion), the release's target
    filter right after the crop, and the checked panoptic loader."""
    types = [t['type'] for t in pipeline]
    assert 'PhotoMetricDistortion' not in types and 'LoadPanopticAnnotations' not in types
    assert find_transforms(pipeline, 'ColorAugSSDTransform') == [exp['color_aug']]
    crop = types.index('RandomCrop' if 'RandomCrop' in types else 'RandomCropWithInstance')
    assert pipeline[crop + 1] == exp['target_filter']
    assert types.index('ColorAugSSDTransform') < types.index('RandomFlip')
    if exp['num_stuff'] > 0:
        assert 'LoadCheckedPanopticAnnotations' in types
    else:  # the instance mapper tests the transformed (clipped) json box, not a recomputed one
        assert pipeline[crop]['recompute_bbox'] is False


def cpu_optim_wrapper_cfg(cfg: Config) -> dict:
    """The config's optim_wrapper, buildable on a CPU: mmengine's AmpOptimWrapper asserts a GPU,
    so it becomes mmibs' CPUAmpOptimWrapper (bfloat16 autocast; ignores loss_scale)."""
    wrapper = copy.deepcopy(cfg.optim_wrapper)
    if wrapper['type'] == 'AmpOptimWrapper' and not torch.cuda.is_available():
        wrapper['type'] = 'CPUAmpOptimWrapper'
    return wrapper


def check_optimizer(cfg: Config, model, exp: dict) -> None:
    if exp.get('amp'):  # SOLVER.AMP.ENABLED: float16 autocast + dynamic loss scaling
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.loss_scale == 'dynamic'
    with DefaultScope.overwrite_default_scope('mmdet'):  # mmibs' CPUAmpOptimWrapper
        wrapper = build_optim_wrapper(model, cpu_optim_wrapper_cfg(cfg))
    optimizer = wrapper.optimizer
    assert type(optimizer).__name__ == exp['optimizer']
    groups = optimizer.param_groups
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    if exp['optimizer'] == 'SGD':
        assert {g['lr'] for g in groups} == {exp['lr']}
        # detectron2's WEIGHT_DECAY_NORM 0: no decay on normalisation layers (the GroupNorms of
        # the heads; the frozen BNs are not trained); biases keep WEIGHT_DECAY
        norm_ids = {
            id(p)
            for m in model.modules()
            if isinstance(m, (torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm))
            for p in m.parameters(recurse=False)
        }
        for group in groups:
            (param, ) = group['params']
            if param.requires_grad:
                expected = 0.0 if id(param) in norm_ids else exp['weight_decay']
                assert group['weight_decay'] == expected
        assert {g['momentum'] for g in groups} == {exp['momentum']}
        check_clipping(wrapper, exp)
    else:
        for group in groups:
            in_backbone = id(group['params'][0]) in backbone_ids
            expected_lr = exp['lr'] * (exp['backbone_lr_mult'] if in_backbone else 1.0)
            assert group['lr'] == pytest.approx(expected_lr, rel=1e-12)
        decays = {g['weight_decay'] for g in groups}
        assert decays == {0.0, exp['weight_decay']}  # norms and query embeddings: no decay
        check_mask2former_decay(model, groups, exp['weight_decay'])
        check_clipping(wrapper, exp)
    # the schedule against detectron2's WarmupPolyLR at a few steps (warm-up end included); every
    # step of every schedule file: test_schedules_are_detectron2_warmup_poly_every_iteration
    schedulers = build_schedulers(cfg, wrapper)
    bases = [g['initial_lr'] for g in groups]
    warmup = exp['warmup_iters']
    checkpoints = {0, 1, 7, max(warmup - 1, 0), warmup, warmup + 1}
    for step in range(max(checkpoints) + 1):
        if step in checkpoints:
            for group, base in zip(groups, bases):
                reference = naive_lr(base, step, exp['max_iters'], warmup)
                assert group['lr'] == pytest.approx(reference, rel=1e-12), step
        for scheduler in schedulers:
            scheduler.step()
    assert schedulers[-1].end == exp['max_iters'] + 1 and schedulers[-1].power == 0.9


def check_clipping(wrapper, exp: dict) -> None:
    """Element-wise clipping (``clip_value``), norm clipping (``clip_max_norm``) or none."""
    if exp.get('clip_value') is not None:
        assert wrapper.clip_func is torch.nn.utils.clip_grad_value_
        assert wrapper.clip_grad_kwargs == dict(clip_value=exp['clip_value'])
    elif exp.get('clip_max_norm') is not None:
        assert wrapper.clip_func is torch.nn.utils.clip_grad_norm_
        assert wrapper.clip_grad_kwargs == dict(max_norm=exp['clip_max_norm'], norm_type=2)
    else:
        assert not hasattr(wrapper, 'clip_func')


def check_mask2former_decay(model, groups: list, weight_decay: float) -> None:
    """The release's groups (train_net.py build_optimizer): decay 0 on every norm module
    (WEIGHT_DECAY_NORM, the backbone's BN included) and on nn.Embedding modules
    (WEIGHT_DECAY_EMBED: query_feat, query_embed, the decoder's level_embed); the pixel
    decoder's level embedding is a plain parameter in the release, so it is decayed."""
    decay_of = {id(p): g['weight_decay'] for g in groups for p in g['params']}
    norm_types = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
    for name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:  # frozen BN (Vistas): not optimised, as released
                continue
            full = f'{name}.{param_name}'
            release_embed = isinstance(module, torch.nn.Embedding) and 'pixel_decoder' not in name
            expected = 0.0 if isinstance(module, norm_types) or release_embed else weight_decay
            assert decay_of[id(param)] == expected, full


def check_panoptic_fcn(model, cfg: Config, exp: dict) -> None:
    head = model.panoptic_head
    assert model.backbone.depth == 50 and len(model.neck.fpn_convs) == 6  # P2-P7
    # the release's backbone: caffe-style MSRA R-50 (stride in the 1x1 conv), BGR input minus the
    # BGR ImageNet means, std 1; frozen BN, stem and res2 frozen
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint='open-mmlab://detectron2/resnet50_caffe')
    assert model.backbone.style == 'caffe' and model.backbone.frozen_stages == 1
    assert model.backbone.layer1[0].conv1.stride == (1, 1)
    assert model.backbone.layer2[0].conv1.stride == (2, 2)  # STRIDE_IN_1X1
    pre = cfg.model.data_preprocessor
    assert (pre.mean, pre.std, pre.bgr_to_rgb) == ([103.53, 116.28, 123.675], [1.0, 1.0, 1.0],
                                                   False)
    assert cfg.model.neck.init_cfg == dict(type='Caffe2Xavier', layer='Conv2d')  # c2_xavier_fill
    assert model.panoptic_fusion_head.tie_break == 'release'
    assert (head.num_things_classes, head.num_stuff_classes) == (exp['num_things'],
                                                                 exp['num_stuff'])
    assert head.stuff_mode == exp['stuff_mode']
    assert head.num_kernels == exp['num_kernels']
    assert head.target_generator.max_instances == exp['max_instances']
    assert tuple(head.target_generator.instance_scales[-1]) == exp['last_scale']
    assert head.loss_seg_th.loss_weight == head.loss_seg_st.loss_weight == exp['segment_weight']
    assert head.head_module.thing_embed.out_channels == exp['embed_dims']
    assert head.head_module.stuff_embed.out_channels == exp['embed_dims']
    assert cfg.model.panoptic_head.head_module.position_head.deform  # DCNv2 position head
    assert cfg.model.test_cfg.thing_score_thr == exp['thing_score_thr']
    assert cfg.model.test_cfg.similarity_thr == exp['similarity_thr']
    if not exp['ibs']:
        assert head.loss_ibs is None
        return
    loss = head.loss_ibs
    assert type(loss).__name__ == 'IBSLoss' and loss.num_points is None  # dense, all pixels
    assert loss.partner == exp['partner'] == cfg.ibs_partner
    # loss_ibs_th = SEGMENT x IBS_WEIGHT x raw loss (docs/method.md)
    assert loss.loss_weight == pytest.approx(exp['segment_weight'] * exp['ibs_weight'])
    assert (cfg.segment_weight, cfg.ibs_weight) == (exp['segment_weight'], exp['ibs_weight'])


def check_mask2former(model, cfg: Config, exp: dict) -> None:
    head = model.panoptic_head
    num_classes = exp['num_things'] + exp['num_stuff']
    assert model.backbone.depth == 50
    assert (head.num_things_classes, head.num_stuff_classes) == (exp['num_things'],
                                                                 exp['num_stuff'])
    assert model.panoptic_fusion_head.num_stuff_classes == exp['num_stuff']
    assert head.loss_cls.class_weight == [1.0] * num_classes + [0.1]
    assert head.mask_embed[-1].out_features == exp['embed_dims']
    assert head.num_queries == 100 and len(head.transformer_decoder.layers) == 9
    backbone = cfg.model.backbone
    assert backbone.frozen_stages == -1  # FREEZE_AT 0
    if exp['backbone_bn'] == 'trained':  # NORM "SyncBN": trained, plain BN on one process
        assert backbone.norm_cfg == dict(type='SyncBN', requires_grad=True)
        assert backbone.norm_eval is False
        assert all(p.requires_grad for p in model.backbone.parameters())
    else:  # detectron2's default FrozenBN
        assert backbone.norm_cfg == dict(type='BN', requires_grad=False) and backbone.norm_eval
    test_cfg = model.panoptic_fusion_head.test_cfg
    assert test_cfg['object_mask_thr'] == exp['object_mask_thr']
    assert test_cfg['iou_thr'] == exp['iou_thr']
    assert test_cfg['panoptic_on'] == (exp['num_stuff'] > 0)
    (pad, ) = cfg.model.data_preprocessor.batch_augments
    assert tuple(pad['size']) == exp['pad_size'] == exp['crop']
    assert (type(head).__name__ == 'Mask2FormerIBSHead') == exp['ibs']
    if not exp['ibs']:
        return
    loss = head.loss_ibs
    assert loss.partner == exp['partner'] == cfg.ibs_partner
    assert loss.loss_weight == exp['ibs_weight'] == cfg.ibs_weight
    assert (loss.num_points, loss.oversample_ratio, loss.importance_sample_ratio) == (12544, 3.0,
                                                                                      0.75)
    assert head.ibs_skip_first_layer  # the release's `i > 0`


def check_maskformer(model, cfg: Config, exp: dict) -> None:
    """mmdet's MaskFormer with the Cityscapes classes; IBS dense on every decoder layer."""
    head = model.panoptic_head
    num_classes = exp['num_things'] + exp['num_stuff']
    assert model.backbone.depth == 50
    assert (head.num_things_classes, head.num_stuff_classes) == (exp['num_things'],
                                                                 exp['num_stuff'])
    assert model.panoptic_fusion_head.num_stuff_classes == exp['num_stuff']
    assert head.loss_cls.class_weight == [1.0] * num_classes + [0.1]
    assert head.loss_cls.loss_weight == exp['class_loss_weight']
    assert (type(head.loss_mask).__name__, head.loss_mask.loss_weight) == exp['mask_loss']
    assert head.loss_dice.loss_weight == exp['dice_weight']
    assert head.mask_embed[-1].out_features == exp['embed_dims']
    assert head.num_queries == 100
    assert len(head.transformer_decoder.layers) == exp['num_decoder_layers']
    assert exp['backbone_bn'] == 'frozen'  # mmdet's MaskFormer: frozen BN, every conv trained
    assert cfg.model.backbone.norm_cfg == dict(type='BN', requires_grad=False)
    assert cfg.model.backbone.norm_eval and cfg.model.backbone.frozen_stages == -1
    test_cfg = model.panoptic_fusion_head.test_cfg
    assert (test_cfg['object_mask_thr'], test_cfg['iou_thr']) == (exp['object_mask_thr'],
                                                                  exp['iou_thr'])
    (pad, ) = cfg.model.data_preprocessor.batch_augments
    assert tuple(pad['size']) == exp['pad_size'] == exp['crop']
    assert (type(head).__name__ == 'MaskFormerIBSHead') == exp['ibs']
    if not exp['ibs']:
        assert type(head).__name__ == 'MaskFormerHead'
        return
    loss = head.loss_ibs
    assert loss.partner == exp['partner'] == cfg.ibs_partner
    assert loss.loss_weight == exp['ibs_weight'] == cfg.ibs_weight
    assert loss.num_points is None  # dense, as MaskFormer's own mask losses
    assert head.ibs_skip_first_layer is False  # every decoder layer


def check_instance_net(model, cfg: Config, exp: dict, net: str) -> None:
    """SOLOv2 / CondInst on Cityscapes instances: mmdet's model with the 8 thing classes, the
    official instance metric, IBS in the mask head."""
    head = model.mask_head
    assert model.backbone.depth == 50 and model.backbone.frozen_stages == 1
    assert cfg.model.backbone.style == 'pytorch'
    classes_head = head if net == 'solov2' else model.bbox_head
    assert classes_head.num_classes == exp['num_things']
    assert head.loss_mask.loss_weight == exp['mask_weight']
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'CityScapesMetric' and evaluator.seg_prefix.endswith('gtFine/val')
    names = INSTANCE_NETS[net]
    assert type(head).__name__ == (names['ibs_head'] if exp['ibs'] else names['head'])
    if not exp['ibs']:
        return
    if net == 'solov2':
        assert head.dynamic_conv_size == 1  # a kernel is an embedding of the mask features
    loss = head.loss_ibs
    assert type(loss).__name__ == 'IBSLoss' and loss.num_points is None  # dense, all pixels
    assert loss.partner == exp['partner'] == cfg.ibs_partner
    assert loss.loss_weight == exp['ibs_weight'] == cfg.ibs_weight


def check_samples(samples: list, cfg: Config, exp: dict) -> None:
    assert len(samples) == (2 if train_dataset_cfg(cfg).type == 'CropSamplingDataset' else 1)
    for sample in samples:
        shape = tuple(sample['inputs'].shape)
        assert shape[0] == 3
        if exp['crop'] is not None:
            assert shape[1:] == tuple(c // DATA_SHRINK for c in exp['crop'])
        gt = sample['data_samples']
        if exp['num_stuff'] > 0:
            assert tuple(gt.gt_sem_seg.sem_seg.shape[1:]) == shape[1:]
        assert gt.gt_instances.masks.masks.shape[1:] == shape[1:]


@pytest.mark.parametrize('rel_path', [c for c in CONFIGS if is_experiment(c)])
def test_config_builds_with_the_paper_values(rel_path, synthetic):
    cfg = load_config(rel_path)
    name = osp.basename(rel_path)
    exp = expected_values(name)
    assert cfg.default_scope == 'mmdet' and 'mmibs' in cfg.custom_imports['imports']
    if not name.startswith('panoptic-fcn'):  # Panoptic FCN: check_panoptic_fcn
        assert cfg.model.backbone.init_cfg == dict(
            type='Pretrained', checkpoint='torchvision://resnet50')
    check_batch_and_schedule(cfg, exp, name)
    check_pipeline(cfg, exp)
    model = build_model(cfg)
    net = parse_name(name)['model']
    if net == 'panoptic-fcn':
        check_panoptic_fcn(model, cfg, exp)
    elif name.startswith('maskformer'):
        check_maskformer(model, cfg, exp)
    elif net in INSTANCE_NETS:
        check_instance_net(model, cfg, exp, net)
    else:
        check_mask2former(model, cfg, exp)
    check_optimizer(cfg, model, exp)
    check_samples(draw_train_samples(cfg, synthetic), cfg, exp)


@pytest.mark.parametrize('rel_path', TOY_CONFIGS)
def test_demo_config_builds(rel_path, synthetic):
    cfg = load_config(rel_path)
    model = build_model(cfg)
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    build_schedulers(cfg, wrapper)
    samples = draw_train_samples(cfg, synthetic)
    name = osp.basename(rel_path)
    ibs, crop_sampling = '-ibs' in name, '-cropsamp-' in name
    # IBS lives in the panoptic head, or in the mask head of the instance nets (SOLOv2, CondInst)
    head = model.panoptic_head if hasattr(model, 'panoptic_head') else model.mask_head
    # Mask2Former's plain head has no loss_ibs attribute; the other heads hold None without IBS
    assert (getattr(head, 'loss_ibs', None) is not None) == ibs
    if ibs:
        # the pair partner only exists with crop-sampled pairs; plain crops draw a random one
        assert head.loss_ibs.partner == ('pair' if crop_sampling else 'random')
    assert (train_dataset_cfg(cfg).type == 'CropSamplingDataset') == crop_sampling
    assert len(samples) == (2 if crop_sampling else 1)


SCHEDULES = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '_base_', 'schedules', '*.py')))


@pytest.mark.parametrize('rel_path', SCHEDULES)
def test_schedules_are_detectron2_warmup_poly_every_iteration(rel_path):
    """Every iteration of every schedule file against WarmupPolyLR's closed form (``naive_lr``,
    relative 1e-9): the warm-up reaches 1 at ``warmup_iters`` and the last iteration
    (``max_iters - 1``) gets base x (1 / max_iters) ** 0.9, not 0 (mmengine's LinearLR / PolyLR
    count ``end - begin - 1`` steps, hence ``end`` one past detectron2's count)."""
    cfg = load_config(rel_path)
    model = torch.nn.Linear(1, 1, bias=False)
    with DefaultScope.overwrite_default_scope('mmdet'):  # mmibs' CPUAmpOptimWrapper
        wrapper = build_optim_wrapper(model, cpu_optim_wrapper_cfg(cfg))
    schedulers = build_schedulers(cfg, wrapper)
    group = wrapper.optimizer.param_groups[0]
    base, max_iters = group['initial_lr'], cfg.train_cfg.max_iters
    warmup = cfg.get('warmup_iters', 0)
    lrs = np.empty(max_iters)
    for step in range(max_iters):
        lrs[step] = group['lr']
        for scheduler in schedulers:
            scheduler.step()
    steps = np.arange(max_iters, dtype=np.float64)
    alpha = np.where(steps < warmup, steps / max(warmup, 1), 1.0)
    reference = base * (0.001 * (1 - alpha) + alpha) * (1 - steps / max_iters)**0.9
    np.testing.assert_allclose(lrs, reference, rtol=1e-9, atol=0)
    assert lrs[-1] == pytest.approx(base * (1 / max_iters)**0.9, rel=1e-9)


RELEASED_CONFIGS = [c for c in CONFIGS if RELEASED_DIR in c and 'panoptic_fcn' in c]
RELEASED_BASES = {
    'cityscapes': 'panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024.py',
    'cityscapes-ibs': 'panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024-ibs.py',
    'mapillary': 'panoptic-fcn_r50_8xb4-150k_mapillary-crop-1024x1024.py',
    'mapillary-ibs': 'panoptic-fcn_r50_8xb4-150k_mapillary-cropsamp-1024x1024-ibs.py',
}


@pytest.mark.parametrize('rel_path', RELEASED_CONFIGS)
def test_panoptic_fcn_released_checkpoint_configs(rel_path):
    """The configs of the authors' checkpoints: the model of the matching training config, fed
    as the release feeds it (BGR input minus PIXEL_MEAN listed in RGB order, std 1); Vistas test
    images decoded and resized with PIL as detectron2 does (long side 2048)."""
    name = osp.basename(rel_path)
    key = name[len('panoptic-fcn_r50_release-ckpt_'):-len('.py')]
    cfg = load_config(rel_path)
    base = load_config(osp.join('configs', 'panoptic_fcn', RELEASED_BASES[key]))
    ours, theirs = flatten(cfg.model.to_dict()), flatten(base.model.to_dict())
    differing = {k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)}
    assert differing == {'data_preprocessor.mean.0', 'data_preprocessor.mean.2'}
    pre = cfg.model.data_preprocessor
    assert (pre.mean, pre.std, pre.bgr_to_rgb) == ([123.675, 116.28, 103.53], [1.0, 1.0, 1.0],
                                                   False)
    pipeline = cfg.test_dataloader.dataset.pipeline
    if key.startswith('mapillary'):
        assert pipeline[0]['imdecode_backend'] == 'pillow'
        (resize, ) = find_transforms(pipeline, 'ResizeShortestEdge')
        assert (resize['scale'], resize['max_size'], resize['backend'],
                resize['interpolation']) == (2048, 2048, 'pillow', 'bilinear')
        # detectron2's ResizeShortestEdge(2048, 2048) on uint8: PIL bilinear, int(x + 0.5) sizes
        from PIL import Image

        from mmdet.registry import TRANSFORMS
        img = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
        with DefaultScope.overwrite_default_scope('mmdet'):
            out = TRANSFORMS.build(resize)(dict(img=img, img_shape=img.shape[:2]))
        expected = np.asarray(Image.fromarray(img).resize((2048, 1229), Image.BILINEAR))
        assert np.array_equal(out['img'], expected)
    else:  # Cityscapes: 1024x2048 images at full size, as the release's (1024, 2048) resize
        assert not find_transforms(pipeline, 'Resize', 'ResizeShortestEdge', 'RandomResize')
    build_model(cfg)


def shrink_model(cfg: Config) -> dict:
    """The config's model on ResNet-18 (no weights), 20 queries and the pad size / DATA_SHRINK."""
    model = copy.deepcopy(cfg.model)
    model.backbone.update(depth=18, init_cfg=None)
    if model.type in ('PanopticFCN', 'SOLOv2', 'CondInst'):
        model.neck.in_channels = [64, 128, 256, 512]
    else:
        model.panoptic_head.update(in_channels=[64, 128, 256, 512], num_queries=20)
        (pad, ) = model.data_preprocessor.batch_augments
        pad['size'] = tuple(s // DATA_SHRINK for s in pad['size'])
    return model


@pytest.mark.parametrize('rel_path', [
    'configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024-ibs.py',
    'configs/mask2former/mask2former_r50_8xb2-300k_mapillary-instance-crop-1024x1024-ibs.py',
    'configs/panoptic_fcn/panoptic-fcn_r50_8xb4-150k_mapillary-cropsamp-1024x1024-ibs.py',
    'configs/panoptic_fcn/panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024-ibs.py',
    'configs/maskformer/maskformer_r50_8xb2-90k_cityscapes-crop-512x1024-ibs.py',
    'configs/solov2/solov2_r50_8xb4-65k_cityscapes-instance-crop-512x1024-ibs.py',
    'configs/condinst/condinst_r50_8xb4-65k_cityscapes-instance-crop-512x1024-ibs.py',
])
def test_config_pipeline_feeds_its_model(rel_path, synthetic):
    """Two items of the config's own train pipeline (sizes / DATA_SHRINK) through one training
    iteration of its model on ResNet-18: data contract, IBS loss keys and a positive IBS loss."""
    cfg = load_config(rel_path)

    def draw_two(seed: int) -> list:
        samples = draw_train_samples(cfg, synthetic, seed=seed)
        if len(samples) == 1:  # not crop sampling: IBS needs a second image
            samples = samples + draw_train_samples(cfg, synthetic, index=1, seed=seed)
        return samples

    def has_things(samples: list) -> bool:
        return any(len(s['data_samples'].gt_instances) for s in samples)

    # a plain random crop (MaskFormer's config) can miss every thing: draw again until one of the
    # two crops holds a thing, so that the IBS loss has something to supervise
    samples, seed = draw_two(0), 0
    while not has_things(samples) and seed < 20:
        seed += 1
        samples = draw_two(seed)
    assert has_things(samples)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(shrink_model(cfg))
    model = revert_sync_batchnorm(model)  # as the runner does without distributed training
    with DefaultScope.overwrite_default_scope('mmdet'):
        wrapper = build_optim_wrapper(model, cpu_optim_wrapper_cfg(cfg))
    log = model.train_step(pseudo_collate(samples), wrapper)
    assert all(torch.isfinite(v) for v in log.values())
    if model.__class__.__name__ == 'PanopticFCN':
        ibs_keys = {'loss_ibs_th'}
    elif model.__class__.__name__ == 'MaskFormer':  # every one of the 6 decoder layers
        ibs_keys = {'loss_ibs'} | {f'd{i}.loss_ibs' for i in range(5)}
    elif model.__class__.__name__ in ('SOLOv2', 'CondInst'):
        ibs_keys = {'loss_ibs'}
    else:  # the final output and decoder layers 1..8: not the query-only prediction (d0)
        ibs_keys = {'loss_ibs'} | {f'd{i}.loss_ibs' for i in range(1, 9)}
    assert {k for k in log if 'ibs' in k} == ibs_keys
    assert all(log[k].item() > 0 for k in ibs_keys)


# ---------------------------------------------------------------------------------------------
# IBS configs are small diffs over their baselines
# ---------------------------------------------------------------------------------------------
def flatten(obj, prefix=''):
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(flatten(value, f'{prefix}{key}.'))
        return out or {prefix[:-1]: {}}
    if isinstance(obj, list):
        out = {}
        for i, value in enumerate(obj):
            out.update(flatten(value, f'{prefix}{i}.'))
        return out or {prefix[:-1]: []}
    return {prefix[:-1]: obj}


def baseline_of(rel_path: str) -> str:
    """The config without IBS of the same (network, dataset, data mode)."""
    fields = parse_name(osp.basename(rel_path))
    candidates = [
        c for c in CONFIGS if (p := parse_name(osp.basename(c))) and not p['ibs'] and all(
            p[k] == fields[k] for k in ('model', 'dataset_key', 'mode', 'size', 'iters'))
    ]
    assert len(candidates) == 1, (rel_path, candidates)
    return candidates[0]


IBS_KNOBS = ('segment_weight', 'ibs_weight', 'ibs_partner', 'embed_channels')
BATCH_KEYS = ('num_gpus', 'images_per_gpu', 'train_dataloader.batch_size',
              'auto_scale_lr.base_batch_size')


@pytest.mark.parametrize(
    'rel_path', [c for c in CONFIGS if is_experiment(c) and parse_name(osp.basename(c))['ibs']])
def test_ibs_configs_differ_from_their_baseline_only_in_ibs(rel_path):
    ibs, base = (flatten(load_config(p).to_dict()) for p in (rel_path, baseline_of(rel_path)))
    exp = expected_values(osp.basename(rel_path))
    head = 'mask_head' if parse_name(osp.basename(rel_path))['model'] in INSTANCE_NETS \
        else 'panoptic_head'
    allowed = {f'model.{head}.type', 'model.panoptic_head.ibs_skip_first_layer'}
    # the C ablation changes the embedding width, nothing else
    if exp.get('embed_dims', 256) != 256:
        allowed.add('model.panoptic_head.head_module.feature_encoder.out_channels')
    if exp['images_per_gpu'] != parse_name(osp.basename(baseline_of(rel_path)))['batch']:
        allowed.update(BATCH_KEYS)  # full-image IBS needs >= 2 images per GPU
    differing = {
        k
        for k in set(ibs) | set(base) if ibs.get(k, '<missing>') != base.get(k, '<missing>')
        and k not in IBS_KNOBS and not k.startswith(f'model.{head}.loss_ibs')
    }
    assert differing <= allowed, sorted(differing - allowed)
    assert base.get(f'model.{head}.loss_ibs', None) is None
    # the images per iteration, hence the learning rate, are the baseline's
    assert ibs['auto_scale_lr.base_batch_size'] == base['auto_scale_lr.base_batch_size']


def test_mask2former_base_differs_from_mmdet_only_as_documented():
    """configs/_base_/models/mask2former_r50_cityscapes.py writes out mmdet 3.3.0's
    mask2former_r50_8xb2-lsj-50e_coco-panoptic.py model; only the documented values differ."""
    ours = flatten(load_config('configs/_base_/models/mask2former_r50_cityscapes.py').model)
    mmdet_config = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former',
        'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py')
    mmdet_model = flatten(Config.fromfile(mmdet_config).model.to_dict())
    differing = {
        k
        for k in set(ours) | set(mmdet_model) if ours.get(k, '?') != mmdet_model.get(k, '?')
    }
    documented = {
        'backbone.norm_cfg.type', 'backbone.norm_cfg.requires_grad', 'backbone.norm_eval',
        'panoptic_head.num_things_classes', 'panoptic_head.num_stuff_classes',
        'panoptic_fusion_head.num_things_classes', 'panoptic_fusion_head.num_stuff_classes',
        'data_preprocessor.batch_augments.0.size', 'test_cfg.instance_on',
        'test_cfg.object_mask_thr', 'test_cfg.iou_thr'
    }
    class_weight = {k for k in differing if k.startswith('panoptic_head.loss_cls.class_weight.')}
    assert differing - class_weight <= documented, sorted(differing - class_weight - documented)
    assert (ours['test_cfg.iou_thr'], ours['test_cfg.object_mask_thr']) == (0.8, 0.8)
    assert ours['data_preprocessor.batch_augments.0.size'] == (512, 1024)
    assert (ours['backbone.norm_cfg.type'], ours['backbone.norm_eval']) == ('SyncBN', False)


def test_maskformer_base_differs_from_mmdet_only_as_documented():
    """configs/_base_/models/maskformer_r50_cityscapes.py writes out mmdet 3.3.0's
    maskformer_r50_ms-16xb1-75e_coco.py model; only the class counts, the class weights and the
    fixed 512x1024 pad of the crops differ."""
    ours = flatten(load_config('configs/_base_/models/maskformer_r50_cityscapes.py').model)
    mmdet_config = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', 'maskformer',
        'maskformer_r50_ms-16xb1-75e_coco.py')
    mmdet_model = flatten(Config.fromfile(mmdet_config).model.to_dict())
    differing = {
        k
        for k in set(ours) | set(mmdet_model) if ours.get(k, '?') != mmdet_model.get(k, '?')
    }
    documented = {
        'panoptic_head.num_things_classes', 'panoptic_head.num_stuff_classes',
        'panoptic_fusion_head.num_things_classes', 'panoptic_fusion_head.num_stuff_classes'
    }
    class_weight = {k for k in differing if k.startswith('panoptic_head.loss_cls.class_weight.')}
    pad = {k for k in differing if k.startswith('data_preprocessor.batch_augments')}
    assert differing - class_weight - pad <= documented, sorted(differing - class_weight - pad)
    assert class_weight and pad  # 134 -> 20 class weights; mmdet pads nothing to a fixed size
    assert ours['data_preprocessor.batch_augments.0.size'] == (512, 1024)
    assert ours['data_preprocessor.batch_augments.0.type'] == 'BatchFixedSizePad'
    assert (ours['panoptic_head.num_things_classes'],
            ours['panoptic_head.num_stuff_classes']) == (8, 11)


@pytest.mark.parametrize('rel_path', RELEASED)
def test_mask2former_released_checkpoint_configs(rel_path):
    """configs/mask2former/released/: the recipe's training config with the release's
    test-time settings (resize, thresholds, queries, outputs)."""
    cfg = load_config(rel_path)
    exp = RELEASED_TEST[osp.basename(rel_path)]
    model, recipe = cfg.model, RECIPES[exp['recipe']]
    assert model.panoptic_head.num_queries == exp['num_queries']
    assert model.panoptic_head.num_things_classes + model.panoptic_head.num_stuff_classes == \
        exp['num_classes'] == recipe['num_things'] + recipe['num_stuff']
    for key in ('object_mask_thr', 'iou_thr', 'panoptic_on', 'instance_on', 'max_per_image'):
        assert model.test_cfg[key] == exp[key], key
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        (resize, ) = find_transforms(list(loader.dataset.pipeline), 'ResizeShortestEdge')
        assert (resize['scale'], resize['max_size']) == exp['test_resize']
        assert (resize['backend'], resize['interpolation']) == ('pillow', 'bilinear')  # PIL
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmibs.registry import TRANSFORMS
        resize = TRANSFORMS.build(dict(resize, type='ResizeShortestEdge'))
    # detectron2's ResizeShortestEdge.get_output_shape on a 1024x2048 Cityscapes and a
    # 3000x4000 Vistas image: short side to `scale`, then long side <= max_size, int(x + 0.5)
    out = resize(dict(img=np.zeros((3000, 4000, 3), np.uint8)))
    short, longest = exp['test_resize']
    scale = min(short / 3000, longest / 4000)
    assert out['img'].shape[:2] == (int(3000 * scale + 0.5), int(4000 * scale + 0.5))


# ---------------------------------------------------------------------------------------------
# the shipped Cityscapes crop config with IBS: one training iteration and one prediction
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_r50_cityscapes_crop_ibs_config_trains_and_predicts_512x1024():
    """R50 (init_cfg=None), deformable position head, 2 x 512x1024: ~60-90 s on one core,
    most of it mmcv's CPU DCNv2 backward."""
    cfg = load_config(
        'configs/panoptic_fcn/panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024-ibs.py')
    torch.manual_seed(0)
    model = build_model(cfg)
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    # Two Cityscapes-like crops: cars (label 2) side by side, a person (0), sky (18) over
    # road (8); mmdet's contiguous labels (8 things, then 11 stuff).
    crop = dict(height=512, width=1024, stuff_bands=[(18, 0), (8, 300)], num_things_classes=8)
    img0, s0 = synthetic_panoptic_sample(
        things=[(2, (100, 200, 300, 400)), (2, (320, 180, 520, 420)), (0, (700, 250, 760, 330))],
        seed=0,
        **crop)
    img1, s1 = synthetic_panoptic_sample(
        things=[(2, (600, 150, 900, 450)), (0, (80, 220, 140, 320))], seed=1, **crop)
    embed = model.panoptic_head.head_module.thing_embed.weight
    before = embed.detach().clone()
    log = model.train_step(dict(inputs=[img0, img1], data_samples=[s0, s1]), wrapper)
    assert set(log) == {
        'loss', 'loss_pos_th', 'loss_pos_st', 'loss_seg_th', 'loss_seg_st', 'loss_ibs_th'
    }
    assert all(torch.isfinite(v) for v in log.values())
    # focal loss towards empty masks of every thing kernel on the partner: strictly positive
    assert log['loss_ibs_th'].item() > 0
    parts = sum(v for k, v in log.items() if k != 'loss')
    assert log['loss'].item() == pytest.approx(parts.item(), rel=1e-5)
    assert not torch.equal(before, embed.detach())
    model.eval()
    (result, ) = model.test_step(dict(inputs=[img0], data_samples=[copy.deepcopy(s0)]))
    pan = result.pred_panoptic_seg.sem_seg
    assert pan.shape == (1, 512, 1024) and pan.dtype == torch.int32
    labels = pan.unique() % INSTANCE_OFFSET
    assert (labels <= 19).all()  # 19 classes; 19 is void
    ins = result.pred_instances
    assert ins.masks.shape[1:] == (512, 1024) and len(ins.masks) == len(ins.scores)
