# Mask2Former R50, Cityscapes, crop sampling without IBS (an ablation of the paper): the
# crop-based baseline's model, optimiser and mixed precision on pairs of 512x1024 crops of one
# uniformly drawn category at a shared target scale (DdeGeus/Mask2Former-IBS
# Base-Cityscapes-PanopticSegmentation-CropSampling.yaml and
# mask_former_panoptic_dataset_mapper_cropsampling.py: things scaled to the target with the
# short side in [512, 3096], long side <= 6192; stuff with the usual short-side choice; a crop
# containing the segment's box centre, detectron2's SSD colour augmentation, flip; targets need
# more than one pixel after the crop, crowd segments are no targets but can be the sampled one).
_base_ = [
    '../_base_/models/mask2former_r50_cityscapes.py',
    '../_base_/datasets/cityscapes_panoptic_cropsampling.py',
    '../_base_/schedules/adamw-poly_90k.py', '../_base_/default_runtime.py'
]

num_gpus = 8
pairs_per_gpu = 1  # 1 pair = 2 images per GPU; 8 x 2 = 16 images (the release's 8 pairs)
crop_size = (512, 1024)  # (h, w), INPUT.CROP.SIZE
short_edges = [int(x * 0.1 * 1024) for x in range(5, 21)]  # INPUT.MIN_SIZE_TRAIN

crop_sampling_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='ResizeToSegmentScale', side_min=512, side_max=3096, overall_max=6192,
         stuff_resize=dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges,
                           max_size=4096)),
    dict(type='RandomCropWithInstance', crop_size=(crop_size[1], crop_size[0]),  # (w, h)
         box_source='sampled_segment', recompute_bbox=True, allow_negative_crop=True),
    # mask_former_panoptic_dataset_mapper*.py: a segment is a target only if `mask.sum() > 1`
    dict(type='FilterEmptyInstances', min_mask_area=2, min_box_wh=None, min_stuff_area=2,
         num_things=8),
    # INPUT.COLOR_AUG_SSD: detectron2's ColorAugSSDTransform with the release's (default) ranges
    dict(type='ColorAugSSDTransform', img_format='BGR', brightness_delta=32, contrast_low=0.5,
         contrast_high=1.5, saturation_low=0.5, saturation_high=1.5, hue_delta=18),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'crop_sampling'))
]
train_dataloader = dict(batch_size=pairs_per_gpu, dataset=dict(pipeline=crop_sampling_pipeline))
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * pairs_per_gpu * 2)

