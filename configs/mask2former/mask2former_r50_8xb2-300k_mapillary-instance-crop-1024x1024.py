# Mask2Former R50, Mapillary Vistas v1.2 instance segmentation (the 37 thing classes, no stuff),
# crop-based training with the panoptic Vistas recipe (AdamW 1e-4, 300k iterations, mixed
# precision, 16 crops of 1024x1024, short side from {1024, ..., 4096}, detectron2's SSD colour
# augmentation, flip), targets filtered as the release's instance mapper does; evaluated with COCO
# mask AP. The release has no Vistas instance config: this follows its panoptic Vistas recipe.
# Model settings as mmdet's mask2former_r50_8xb2-lsj-50e_coco.py relative to its panoptic config:
# no stuff classes, no semantic map, instance output only.
_base_ = [
    '../_base_/models/mask2former_r50_mapillary.py',
    '../_base_/datasets/mapillary_instance_crop.py', '../_base_/schedules/adamw-poly_300k.py',
    '../_base_/default_runtime.py'
]

num_things_classes = 37
num_stuff_classes = 0
num_classes = num_things_classes + num_stuff_classes
num_gpus = 8
images_per_gpu = 2  # 8 GPUs x 2 images = 16
crop_size = (1024, 1024)  # (h, w)
short_edges = [int(x * 0.1 * 2048) for x in range(5, 21)]

model = dict(
    data_preprocessor=dict(
        pad_seg=False,
        batch_augments=[
            dict(
                type='BatchFixedSizePad',
                size=crop_size,
                img_pad_value=0,
                pad_mask=True,
                mask_pad_value=0,
                pad_seg=False)
        ]),
    panoptic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    test_cfg=dict(panoptic_on=False, instance_on=True))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         backend_args={{_base_.backend_args}}),
    dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges, max_size=8192),
    dict(type='RandomCrop', crop_size=(crop_size[1], crop_size[0]), crop_type='absolute',
         recompute_bbox=False, allow_negative_crop=True),
    # mask_former_instance_dataset_mapper.py: the transformed json box needs area > 1 and the
    # mask >= 1 pixel (hence the crop keeps the clipped boxes: recompute_bbox=False)
    dict(type='FilterEmptyInstances', min_box_wh=None, min_box_area=1),
    # detectron2's ColorAugSSDTransform with the release's (default) ranges
    dict(type='ColorAugSSDTransform', img_format='BGR', brightness_delta=32, contrast_low=0.5,
         contrast_high=1.5, saturation_low=0.5, saturation_high=1.5, hue_delta=18),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=images_per_gpu, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(enable=False, base_batch_size=num_gpus * images_per_gpu)

