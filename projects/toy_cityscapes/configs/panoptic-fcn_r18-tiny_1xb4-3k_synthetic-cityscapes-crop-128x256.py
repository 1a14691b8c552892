# The end-to-end demo's baseline (`make demo`, projects/toy_cityscapes/demo.py): Panoptic FCN
# trained from scratch on CPU on the synthetic Cityscapes-layout set that make_synthetic.py of this
# project writes at a quarter of Cityscapes' resolution (256x512). Everything is the Cityscapes
# recipe scaled by 1/4 (crop 128x256 of a 0.5-2.0 random resize, instance scale ranges, stuff area
# limit), on a small ResNet-18 (base 16 channels, 64-wide heads) so that it trains in minutes on 2
# cores: 3,000 iterations of 4 images (`1xb4-3k`) on 1,000 synthetic training images, what the
# demo runs by default (its --iters). The baseline's PQ_th is still rising at 3,000 (validation
# curve: ibs_study.py --val-interval; README.md of this project), so this is the longest schedule
# that fits the demo's time, not a converged one.
_base_ = [
    '../../../configs/_base_/models/panoptic-fcn_r50_fpn.py',
    '../../../configs/_base_/datasets/cityscapes_panoptic_crop.py',
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
    panoptic_head=dict(
        head_module=dict(
            feature_encoder=dict(in_channels=channels, fpn_channels=channels,
                                 out_channels=channels, norm_cfg=gn),
            # mmcv's CPU kernel of the modulated deformable conv makes up over half of a CPU
            # training step (its backward alone); the demo uses plain convs, the real configs DCN.
            position_head=dict(in_channels=channels, feat_channels=channels, norm_cfg=gn,
                               deform=False),
            kernel_head=dict(in_channels=channels, feat_channels=channels, norm_cfg=gn))),
    train_cfg=dict(target_generator=dict(
        instance_scales=((1, 32), (16, 64), (32, 128), (64, 256), (128, 512)))),
    test_cfg=dict(stuff_area_limit=2048 // 16))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomResize', scale=image_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCropWithInstance', crop_size=(crop_size[1], crop_size[0]),
         box_source='things', recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterEmptyInstances'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/cityscapes_panoptic_val.json',
    seg_prefix=data_root + 'annotations/cityscapes_panoptic_val/')
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
# validation during training (the study's convergence curves, --val-interval) must not shift the
# training's random streams: RNGStateHook saves them before validation and restores them after
custom_hooks = [dict(type='RNGStateHook')]
auto_scale_lr = dict(enable=False, base_batch_size=4)
