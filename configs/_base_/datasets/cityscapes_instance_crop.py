# Cityscapes instance segmentation (the 8 thing classes), crop-based training with the panoptic
# crop recipe: random resize by 0.5-2.0 of 2048x1024, a 512x1024 crop containing the centre of the
# box of a random thing segment, the instances left empty by the crop dropped, horizontal flip.
# The targets are the thing instances of the panoptic files that
# tools/dataset_converters/cityscapes_panoptic.py writes (crowd regions are no instance, as in
# the panoptic configs); the semantic map is not loaded. Evaluated with mmdet's CityScapesMetric
# (the official instance-level AP of cityscapesscripts) against the raw gtFine/val
# *_gtFine_instanceIds.png at full resolution (2048x1024). See docs/data.md.
dataset_type = 'CityscapesPanopticDataset'
data_root = 'data/cityscapes/'
backend_args = None
crop_size = (512, 1024)  # (h, w)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=False,
         backend_args=backend_args),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCropWithInstance', crop_size=(crop_size[1], crop_size[0]),  # (w, h)
         box_source='things', recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterEmptyInstances'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # 2048x1024 images stay as they are; the resize records scale_factor for the heads
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
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
        data_root=data_root,
        ann_file='annotations/cityscapes_panoptic_train.json',
        data_prefix=dict(img='leftImg8bit/train/', seg='annotations/cityscapes_panoptic_train/'),
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
        ann_file='annotations/cityscapes_panoptic_val.json',
        data_prefix=dict(img='leftImg8bit/val/', seg='annotations/cityscapes_panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# The ground truth is found from each image path (leftImg8bit -> gtFine, *_gtFine_instanceIds.png);
# seg_prefix must be set but is not read. outfile_prefix=None writes the result PNGs to a temporary
# folder; set a folder to keep them (or format_only=True for the test server).
val_evaluator = dict(
    type='CityScapesMetric',
    seg_prefix=data_root + 'gtFine/val',
    outfile_prefix=None,
    backend_args=backend_args)
test_evaluator = val_evaluator
