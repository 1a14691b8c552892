# The IBS study's CondInst with the released IBS recipe: crop sampling (pairs of crops of one
# category at a shared target scale, at batch indices 2k and 2k+1) and IBS between the two crops of
# each pair (partner 'pair', weight 1.7 by the loss-ratio rule, as the -crop-...-ibs config
# says). Crop-sampling sizes are the Cityscapes values scaled by 1/4, as the tiny Panoptic FCN's.
_base_ = ['./condinst_r18-tiny_1xb4-3k_synthetic-cityscapes-crop-128x256.py']

model = dict(
    mask_head=dict(
        loss_ibs=dict(
            _delete_=True, type='IBSLoss', partner='pair', num_points=None,
            loss_weight=1.7)))

crop_sampling_pipeline = [
    dict(type='LoadImageFromFile'),
    # the semantic map locates a sampled stuff segment for the crop (the heads do not use it)
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='ResizeToSegmentScale', side_min=512 // 4, side_max=3096 // 4,
         overall_max=6192 // 4,
         stuff_resize=dict(type='RandomResize', scale={{_base_.image_scale}},
                           ratio_range=(0.5, 2.0), keep_ratio=True)),
    dict(type='RandomCropWithInstance', crop_size=(256, 128),  # (w, h)
         box_source='sampled_segment', recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterEmptyInstances'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'crop_sampling'))
]
train_dataloader = dict(
    _delete_=True,
    batch_size=2,  # pairs: 4 images, as the baseline
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pair_collate'),
    dataset=dict(
        type='CropSamplingDataset',
        dataset=dict(
            type='CityscapesPanopticDataset',
            data_root={{_base_.data_root}},
            ann_file='annotations/cityscapes_panoptic_train.json',
            data_prefix=dict(
                img='leftImg8bit/train/', seg='annotations/cityscapes_panoptic_train/'),
            pipeline=[]),
        pipeline=crop_sampling_pipeline,
        scales=(8, 16, 32, 64, 128)))
