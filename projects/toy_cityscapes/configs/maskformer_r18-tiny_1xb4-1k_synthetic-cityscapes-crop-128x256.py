# A tiny MaskFormer for CPU studies (projects/toy_cityscapes/ibs_study.py), the counterpart of the
# tiny Mask2Former: the Cityscapes crop-based MaskFormer (configs/maskformer/) with only size and
# schedule changed, on the synthetic Cityscapes-layout data at 256x512: ResNet-18 from scratch
# (init_cfg=None, batch norm trained), 64-wide transformer-encoder pixel decoder with 1 encoder
# layer, 3 decoder layers, 20 queries, MaskFormer's dense focal + dice mask losses, 128x256 crops of
# a 0.5-2.0 x 256 short-side resize, batch 4, 1,000 iterations, AdamW lr 1e-3 in float32 (the tiny
# Mask2Former's step: a from-scratch network needs more than the fine-tuning lr 1e-4), and no
# dropout in the transformers (Mask2Former's 0.0 instead of MaskFormer's 0.1).
# Why no dropout: with MaskFormer's 0.1 this 64-wide network never tells its queries apart. At
# 1,000 iterations (seed 0) all 20 queries of an image output the same class distribution (on a
# validation image class 0 at 0.68-0.78 for every query), so the output is at most a few segments
# of one class and PQ stays 0.0 at every validation; the same run without dropout
# reached PQ 69.8 (PQ_th 27.2) at 250 iterations. Lower learning rates with dropout (1e-4, 3e-4)
# only learned slower (classification loss 2.06 and 1.71 at 350 iterations, 1.4 at 1e-3).
_base_ = ['../../../configs/maskformer/maskformer_r50_8xb2-90k_cityscapes-crop-512x1024.py']

data_root = 'demo_out/data/cityscapes/'
num_gpus = 1
images_per_gpu = 4
crop_size = (128, 256)  # (h, w)
short_edges = [int(x * 0.1 * 256) for x in range(5, 21)]  # 0.5-2.0 x the 256-pixel scenes
max_iters = 1000  # the baseline's PQ_th levels off over the last quarter (46.2 at 1,000,
# 44.9 at 750, 27.1 at 500; 3 seeds, docs/results/ibs_study_heads_curves.md)
dims = 64

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=crop_size, img_pad_value=0, pad_mask=True,
             mask_pad_value=0, pad_seg=True, seg_pad_value=255)
    ]),
    backbone=dict(
        depth=18, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, init_cfg=None),
    panoptic_head=dict(
        in_channels=[64, 128, 256, 512],
        feat_channels=dims,
        out_channels=dims,
        num_queries=20,
        pixel_decoder=dict(
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=dims, num_heads=4, dropout=0.0),
                    ffn_cfg=dict(embed_dims=dims, feedforward_channels=4 * dims, ffn_drop=0.0))),
            norm_cfg=dict(type='GN', num_groups=16),
            positional_encoding=dict(num_feats=dims // 2)),
        positional_encoding=dict(num_feats=dims // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=dims, num_heads=4, dropout=0.0),
                cross_attn_cfg=dict(embed_dims=dims, num_heads=4, dropout=0.0),
                ffn_cfg=dict(embed_dims=dims, feedforward_channels=4 * dims, ffn_drop=0.0)))),
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
# validation during training must not shift the training's random streams (RNGStateHook)
custom_hooks = [dict(type='RNGStateHook')]
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
