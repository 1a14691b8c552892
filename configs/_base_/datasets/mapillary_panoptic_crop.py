# Mapillary Vistas v1.2 panoptic (65 classes, 37 things), crop-based training as in the released
# Panoptic FCN-IBS configs: short side drawn from 1024, 1152, ..., 2048 (long side <= 4096), a
# 1024x1024 crop containing the centre of the box of a random thing segment, crowd regions
# included, the thing instances left empty by the crop dropped, horizontal flip. Test as the
# released configs: short side 2048, long side at most 2048. See docs/data.md.
# Data: tools/dataset_converters/mapillary_vistas_panoptic.py.
dataset_type = 'MapillaryVistasPanopticDataset'
data_root = 'data/mapillary_vistas/'
backend_args = None
crop_size = (1024, 1024)  # (h, w)
# INPUT.MIN_SIZE_TRAIN of the release, sampled as "choice"
short_edges = (1024, 1152, 1280, 1408, 1536, 1664, 1792, 1920, 2048)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='RandomShortestEdgeResize', short_edge_choices=short_edges, max_size=4096),
    dict(type='RandomCropWithInstance', crop_size=(crop_size[1], crop_size[0]),  # (w, h)
         box_source='things', recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterEmptyInstances'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='ResizeShortestEdge', scale=2048, max_size=2048),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]

train_dataloader = dict(
    batch_size=2,  # images per GPU; experiment configs set the real value
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        version='v1.2',
        data_root=data_root,
        ann_file='annotations/mapillary_vistas_v1.2_panoptic_train.json',
        data_prefix=dict(img='training/images/', seg='training/v1.2/panoptic/'),
        filter_cfg=dict(filter_empty_gt=False, min_size=32),
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
        version='v1.2',
        data_root=data_root,
        ann_file='annotations/mapillary_vistas_v1.2_panoptic_val.json',
        data_prefix=dict(img='validation/images/', seg='validation/v1.2/panoptic/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='PanopticQualityMetric',
    ann_file=data_root + 'annotations/mapillary_vistas_v1.2_panoptic_val.json',
    seg_prefix=data_root + 'validation/v1.2/panoptic/',
    backend_args=backend_args)
test_evaluator = val_evaluator
