# Mapillary Vistas v1.2 instance segmentation (the 37 thing classes), crop-based training with the
# panoptic recipe's resize and crop; the instances a crop leaves with a box area <= 1 or an empty
# mask are dropped, the image is kept (the released Mask2Former instance mapper's rule, on the
# cropped json box: recompute_bbox=False). Evaluated with mmdet's CocoMetric (segm) on the
# instance json that `tools/dataset_converters/mapillary_vistas_panoptic.py --instances` writes
# (RLE masks).
dataset_type = 'MapillaryVistasInstanceDataset'
data_root = 'data/mapillary_vistas/'
backend_args = None
crop_size = (1024, 1024)  # (h, w)
short_edges = (1024, 1152, 1280, 1408, 1536, 1664, 1792, 1920, 2048)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, backend_args=backend_args),
    dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges, max_size=4096),
    dict(type='RandomCropWithInstance', crop_size=(crop_size[1], crop_size[0]),  # (w, h)
         box_source='things', recompute_bbox=False, allow_negative_crop=True),
    dict(type='FilterEmptyInstances', min_box_wh=None, min_box_area=1),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='ResizeShortestEdge', scale=2048, max_size=2048),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, backend_args=backend_args),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/mapillary_vistas_v1.2_instances_train.json',
        data_prefix=dict(img='training/images/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/mapillary_vistas_v1.2_instances_val.json',
        data_prefix=dict(img='validation/images/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/mapillary_vistas_v1.2_instances_val.json',
    metric='segm',
    backend_args=backend_args)
test_evaluator = val_evaluator
