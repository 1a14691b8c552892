# Mask2Former R50, Cityscapes panoptic, crop-based training: the baseline of the IBS paper
# (release README row 62.1 PQ), the recipe of DdeGeus/Mask2Former-IBS
# configs/cityscapes/panoptic-segmentation/Base-Cityscapes-PanopticSegmentation.yaml: AdamW lr 1e-4,
# weight decay 0.05 (0 on norms and query / level embeddings), backbone lr x0.1, poly 0.9 over 90k
# iterations, mixed precision (SOLVER.AMP.ENABLED), 16 crops of 512x1024 per iteration
# (IMS_PER_BATCH), short side drawn from {512, 614, ..., 2048} = 0.5-2.0 x 1024 (MIN_SIZE_TRAIN
# "choice", long side <= 4096), a random 512x1024 crop (SINGLE_CATEGORY_MAX_AREA 1.0 makes
# detectron2's category-area-constrained crop a plain random crop), detectron2's SSD colour
# augmentation (ColorAugSSDTransform; NOT mmdet's PhotoMetricDistortion, which also swaps
# channels half the time, uses another hue scale and does not clip after each step) and a
# horizontal flip. The release's mapper then keeps a segment as a target only if it has more than
# one pixel and is not crowd (mask_former_panoptic_dataset_mapper.py, `np.sum(mask) > 1`):
# FilterEmptyInstances after the crop.
_base_ = [
    '../_base_/models/mask2former_r50_cityscapes.py',
    '../_base_/datasets/cityscapes_panoptic_crop.py', '../_base_/schedules/adamw-poly_90k.py',
    '../_base_/default_runtime.py'
]

num_gpus = 8
images_per_gpu = 2  # 8 GPUs x 2 images = IMS_PER_BATCH 16
crop_size = (512, 1024)  # (h, w), INPUT.CROP.SIZE
short_edges = [int(x * 0.1 * 1024) for x in range(5, 21)]  # INPUT.MIN_SIZE_TRAIN

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges, max_size=4096),
    dict(type='RandomCrop', crop_size=(crop_size[1], crop_size[0]), crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    # mask_former_panoptic_dataset_mapper*.py: a segment is a target only if `mask.sum() > 1`
    dict(type='FilterEmptyInstances', min_mask_area=2, min_box_wh=None, min_stuff_area=2,
         num_things=8),
    # INPUT.COLOR_AUG_SSD: detectron2's ColorAugSSDTransform with the release's (default) ranges
    dict(type='ColorAugSSDTransform', img_format='BGR', brightness_delta=32, contrast_low=0.5,
         contrast_high=1.5, saturation_low=0.5, saturation_high=1.5, hue_delta=18),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=images_per_gpu, dataset=dict(pipeline=train_pipeline))
# With fewer GPUs, `--auto-scale-lr` scales lr linearly to the real batch (16 is the release's).
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)

