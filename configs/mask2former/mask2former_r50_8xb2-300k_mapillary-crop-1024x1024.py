# Mask2Former R50, Mapillary Vistas v1.2 panoptic, crop-based training: the baseline of the IBS
# paper (README row 41.5 PQ; ibs_method.md §3.1, §6), the recipe of [M2F-IBS]
# configs/mapillary-vistas/panoptic-segmentation/maskformer_R50_bs16_300k.yaml (Mask2Former's
# Vistas base): AdamW lr 1e-4, weight decay 0.05, poly 0.9 over 300k iterations, 16 crops of
# 1024x1024 per iteration, short side drawn from {1024, 1228, ..., 4096} = 0.5-2.0 x 2048
# (MIN_SIZE_TRAIN "choice", long side <= 8192), a random crop, SSD colour augmentation, flip.
# Test: short side 2048, long side <= 2048.
_base_ = [
    '../_base_/models/mask2former_r50_mapillary.py',
    '../_base_/datasets/mapillary_panoptic_crop.py', '../_base_/schedules/adamw-poly_300k.py',
    '../_base_/default_runtime.py'
]

num_gpus = 8
images_per_gpu = 2  # 8 GPUs x 2 images = IMS_PER_BATCH 16
crop_size = (1024, 1024)  # (h, w), INPUT.CROP.SIZE
short_edges = [int(x * 0.1 * 2048) for x in range(5, 21)]  # INPUT.MIN_SIZE_TRAIN

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges, max_size=8192),
    dict(type='RandomCrop', crop_size=(crop_size[1], crop_size[0]), crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='PhotoMetricDistortion'),  # INPUT.COLOR_AUG_SSD
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=images_per_gpu, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
