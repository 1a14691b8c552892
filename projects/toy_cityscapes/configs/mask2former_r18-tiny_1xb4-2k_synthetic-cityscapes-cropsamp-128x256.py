# Tiny Mask2Former, crop sampling without IBS: the tiny crop-based model trained on pairs of
# crops of one category at a shared target scale, as
# configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024.py, with the
# crop-sampling sizes (side_min / side_max / overall_max, stuff resize, crop) scaled by 1/4 like
# the synthetic scenes (256x512 for Cityscapes' 1024x2048). 2 pairs = 4 images per iteration.
_base_ = ['./mask2former_r18-tiny_1xb4-2k_synthetic-cityscapes-crop-128x256.py']

pairs_per_gpu = 2
crop_sampling_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='ResizeToSegmentScale', side_min=512 // 4, side_max=3096 // 4,
         overall_max=6192 // 4,
         stuff_resize=dict(type='RandomShortestEdgeResize',
                           short_edge_choices={{_base_.short_edges}}, max_size=1024)),
    dict(type='RandomCropWithInstance', crop_size=(256, 128),  # (w, h)
         box_source='sampled_segment', recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterEmptyInstances', min_mask_area=2, min_box_wh=None, min_stuff_area=2,
         num_things=8),
    dict(type='ColorAugSSDTransform', img_format='BGR', brightness_delta=32, contrast_low=0.5,
         contrast_high=1.5, saturation_low=0.5, saturation_high=1.5, hue_delta=18),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'crop_sampling'))
]
train_dataloader = dict(
    _delete_=True,
    batch_size=pairs_per_gpu,  # pairs: 4 images, as the baseline
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
