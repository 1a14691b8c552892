# A tiny Mask2Former for CPU studies (projects/toy_cityscapes/ibs_study.py): the Cityscapes
# crop-based baseline (configs/mask2former/) with only size and schedule changed, on the synthetic
# Cityscapes-layout data at 256x512 (projects/toy_cityscapes/make_synthetic.py): ResNet-18 from
# scratch (init_cfg=None), 64-wide pixel decoder with 1 deformable encoder layer, 3 decoder layers,
# 20 queries, point-sampled losses at 1/16 of the points (the crops have 1/16 of the pixels),
# 128x256 crops of a 0.5-2.0 x 256 short-side resize (the release's 0.5-2.0 x 1024 scaled by 1/4),
# batch 4, 2,000 iterations (`1xb4-2k`).
_base_ = ['../../../configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-crop-512x1024.py']

data_root = 'demo_out/data/cityscapes/'
num_gpus = 1
images_per_gpu = 4
crop_size = (128, 256)  # (h, w)
short_edges = [int(x * 0.1 * 256) for x in range(5, 21)]  # 0.5-2.0 x the 256-pixel scenes
# 2,000 iterations: the longest schedule a 3-seed study fits on 2 CPU cores (31 minutes per pair of
# runs). The first studies' 500 read the crop sampling + IBS model early: it learns its things
# later than the baseline (PQ_th at 250 / 500 / 1,000 / 1,500, mean of 3 seeds: 3.4 / 15.0 / 37.9 /
# 57.0, baseline 34.9 / 43.1 / 53.3 / 55.3) and catches up by 1,500. The baseline still gains over
# the last quarter (55.3 -> 62.6); docs/results/README.md has the curves.
max_iters = 2000
dims = 64
num_points = 12544 // 16

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=crop_size, img_pad_value=0, pad_mask=True,
             mask_pad_value=0, pad_seg=True, seg_pad_value=255)
    ]),
    backbone=dict(depth=18, norm_cfg=dict(type='BN', requires_grad=True), init_cfg=None),
    panoptic_head=dict(
        in_channels=[64, 128, 256, 512],
        feat_channels=dims,
        out_channels=dims,
        num_queries=20,
        pixel_decoder=dict(
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=dims, num_heads=4),
                    ffn_cfg=dict(embed_dims=dims, feedforward_channels=4 * dims))),
            norm_cfg=dict(type='GN', num_groups=16),
            positional_encoding=dict(num_feats=dims // 2)),
        positional_encoding=dict(num_feats=dims // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=dims, num_heads=4),
                cross_attn_cfg=dict(embed_dims=dims, num_heads=4),
                ffn_cfg=dict(embed_dims=dims, feedforward_channels=4 * dims)))),
    train_cfg=dict(num_points=num_points),
    test_cfg=dict(max_per_image=20))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges, max_size=1024),
    dict(type='RandomCrop', crop_size=(crop_size[1], crop_size[0]), crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterEmptyInstances', min_mask_area=2, min_box_wh=None, min_stuff_area=2,
         num_things=8),
    dict(type='ColorAugSSDTransform', img_format='BGR', brightness_delta=32, contrast_low=0.5,
         contrast_high=1.5, saturation_low=0.5, saturation_high=1.5, hue_delta=18),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=images_per_gpu, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/cityscapes_panoptic_val.json',
    seg_prefix=data_root + 'annotations/cityscapes_panoptic_val/')
test_evaluator = val_evaluator

# A from-scratch network needs a larger step than the release's fine-tuning of an ImageNet
# backbone: at 500 iterations, lr 3e-4 left the things barely learned (seed 0: PQ_th 7.2, seed 1:
# 16.3 on the study's 30 validation images), 1e-3 reached PQ_th 42.8 (seed 0). Plain float32: CPU
# bfloat16 autocast (what tools/train.py substitutes for AMP without a GPU) is slower than float32
# for layers this small and adds rounding to a tiny study.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}},
    clip_grad=dict(max_norm=0.01, norm_type=2))
param_scheduler = dict(end=max_iters + 1)  # one past the last iteration (PolyLR's step count)
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
log_processor = dict(window_size=50)
randomness = dict(seed=0)
# validation during training (the study's convergence curves, --val-interval) must not shift the
# training's random streams: RNGStateHook saves them before validation and restores them after
custom_hooks = [dict(type='RNGStateHook')]
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
