# MaskFormer R50, Cityscapes panoptic, crop-based training: the baseline of MaskFormer + IBS (IBS
# beyond the paper, which tried Panoptic FCN and Mask2Former). MaskFormer has no Cityscapes
# panoptic recipe of its own, so this is the recipe of the Mask2Former Cityscapes configs
# (configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-crop-512x1024.py, the IBS release's
# Base-Cityscapes-PanopticSegmentation.yaml), so that the two networks compare on one recipe:
# AdamW lr 1e-4, weight decay 0.05 (0 on norms and the query embedding), backbone lr x0.1, poly 0.9
# over 90k iterations, gradient-norm clipping 0.01, mixed precision, 16 crops of 512x1024 per
# iteration, short side drawn from {512, 614, ..., 2048} (long side <= 4096), a random 512x1024
# crop, detectron2's SSD colour augmentation, a horizontal flip, targets of more than one pixel.
# The network is mmdet's MaskFormer (configs/_base_/models/maskformer_r50_cityscapes.py).
_base_ = [
    '../_base_/models/maskformer_r50_cityscapes.py',
    '../_base_/datasets/cityscapes_panoptic_crop.py', '../_base_/schedules/adamw-poly_90k.py',
    '../_base_/default_runtime.py'
]

num_gpus = 8
images_per_gpu = 2  # 8 GPUs x 2 images = 16 crops per iteration
crop_size = (512, 1024)  # (h, w)
short_edges = [int(x * 0.1 * 1024) for x in range(5, 21)]  # 512, 614, ..., 2048

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges, max_size=4096),
    dict(type='RandomCrop', crop_size=(crop_size[1], crop_size[0]), crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    # as the Mask2Former configs: a segment is a target only if it has more than one pixel
    dict(type='FilterEmptyInstances', min_mask_area=2, min_box_wh=None, min_stuff_area=2,
         num_things=8),
    dict(type='ColorAugSSDTransform', img_format='BGR', brightness_delta=32, contrast_low=0.5,
         contrast_high=1.5, saturation_low=0.5, saturation_high=1.5, hue_delta=18),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=images_per_gpu, dataset=dict(pipeline=train_pipeline))
# With fewer GPUs, `--auto-scale-lr` scales lr linearly to the real batch (16).
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)
