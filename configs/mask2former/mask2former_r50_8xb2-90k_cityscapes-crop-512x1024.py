# Mask2Former R50, Cityscapes panoptic, crop-based training: the baseline of the IBS paper
# (README row 62.1 PQ; ibs_method.md §3.1, §6), the recipe of [M2F-IBS]
# configs/cityscapes/panoptic-segmentation/Base-Cityscapes-PanopticSegmentation.yaml: AdamW lr 1e-4,
# weight decay 0.05, backbone lr x0.1, poly 0.9 over 90k iterations, 16 crops of 512x1024 per
# iteration (IMS_PER_BATCH), short side drawn from {512, 614, ..., 2048} = 0.5-2.0 x 1024
# (MIN_SIZE_TRAIN "choice", long side <= 4096), a random 512x1024 crop (SINGLE_CATEGORY_MAX_AREA
# 1.0 makes detectron2's category-area-constrained crop a plain random crop), SSD colour
# augmentation (mmdet's PhotoMetricDistortion has the same ranges) and horizontal flip.
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
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges, max_size=4096),
    dict(type='RandomCrop', crop_size=(crop_size[1], crop_size[0]), crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='PhotoMetricDistortion'),  # INPUT.COLOR_AUG_SSD
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=images_per_gpu, dataset=dict(pipeline=train_pipeline))
# With fewer GPUs, `--auto-scale-lr` scales lr linearly to the real batch (16 is the release's).
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
