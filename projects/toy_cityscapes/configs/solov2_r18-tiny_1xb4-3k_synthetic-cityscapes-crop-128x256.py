# The IBS study's SOLOv2 baseline (projects/toy_cityscapes/ibs_study.py --nets solov2): mmdet's
# SOLOv2 trained from scratch on CPU for instance segmentation of the synthetic Cityscapes-layout
# set (256x512). As the tiny Panoptic FCN: the Cityscapes crop recipe scaled by 1/4 (crop 128x256 of
# a 0.5-2.0 random resize, instance scale ranges / 4) on a small ResNet-18 (base 16 channels,
# 64-wide neck and head), 3,000 iterations of 4 images. The head is SOLOV2IBSHead with IBS off
# (mmdet's SOLOV2Head bit for bit), so that the IBS configs only set loss_ibs. Evaluated with the
# official Cityscapes instance AP against the synthetic raw gtFine.
_base_ = [
    '../../../configs/_base_/models/solov2_r50_fpn_cityscapes.py',
    '../../../configs/_base_/datasets/cityscapes_instance_crop.py',
    '../../../configs/_base_/schedules/sgd-poly_65k.py',
    '../../../configs/_base_/default_runtime.py'
]

data_root = 'demo_out/data/cityscapes/'
image_scale = (512, 256)  # (w, h) of the synthetic images
crop_size = (128, 256)  # (h, w)
channels = 64
max_iters = 3000
gn = dict(type='GN', num_groups=16, requires_grad=True)

model = dict(
    backbone=dict(depth=18, base_channels=16, frozen_stages=-1, norm_eval=False,
                  norm_cfg=dict(type='BN', requires_grad=True), init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=channels),
    mask_head=dict(
        type='SOLOV2IBSHead',
        loss_ibs=None,
        in_channels=channels,
        feat_channels=channels,
        stacked_convs=2,
        norm_cfg=gn,
        scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 512)),
        mask_feature_head=dict(feat_channels=32, out_channels=channels, norm_cfg=gn)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=False),
    dict(type='RandomResize', scale=image_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCropWithInstance', crop_size=(crop_size[1], crop_size[0]),
         box_source='things', recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterEmptyInstances'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),  # the images' own size
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(seg_prefix=data_root + 'gtFine/val')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=0.01))
# detectron2's WarmupPolyLR as configs/_base_/schedules/ writes it: mmengine counts end - begin - 1
# steps, so `end` is one past the warm-up length and the number of iterations
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100 + 1),
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
log_processor = dict(window_size=50)
randomness = dict(seed=0)
# validation during training must not shift the training's random streams (ibs_study.py
# --val-interval): RNGStateHook saves them before validation and restores them after
custom_hooks = [dict(type='RNGStateHook')]
auto_scale_lr = dict(enable=False, base_batch_size=4)
