# Cityscapes panoptic with crop sampling (docs/data.md): each item is a pair of 512x1024 crops of
# one uniformly drawn category at a shared target scale s in {32, ..., 512}; things are resized so
# that sqrt(box area) = s (short side kept in [512, 3096], long side <= 6192, the released
# values), stuff gets the ordinary 0.5-2.0 resize; each crop contains the centre of its sampled
# segment (crowd regions can be drawn, as released); thing instances left empty by the crop are
# dropped. pair_collate puts the two crops of an item at batch indices 2k and 2k+1, so
# `batch_size` counts pairs: 1 pair = 2 images per GPU.
_base_ = ['./cityscapes_panoptic_crop.py']

crop_size = (512, 1024)  # (h, w)
crop_sampling_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='ResizeToSegmentScale', side_min=512, side_max=3096, overall_max=6192,
         stuff_resize=dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0),
                           keep_ratio=True)),
    dict(type='RandomCropWithInstance', crop_size=(crop_size[1], crop_size[0]),  # (w, h)
         box_source='sampled_segment', recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterEmptyInstances'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'crop_sampling'))
]
train_dataloader = dict(
    _delete_=True,
    batch_size=1,  # pairs per GPU (2 images)
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),  # uniform over categories
    collate_fn=dict(type='pair_collate'),
    dataset=dict(
        type='CropSamplingDataset',
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            ann_file='annotations/cityscapes_panoptic_train.json',
            data_prefix=dict(
                img='leftImg8bit/train/', seg='annotations/cityscapes_panoptic_train/'),
            pipeline=[],
            backend_args={{_base_.backend_args}}),
        pipeline=crop_sampling_pipeline,
        scales=(32, 64, 128, 256, 512),
        # None: the category -> images index is computed from the dataset; or give the file of
        # tools/dataset_converters/crop_sampling_index.py.
        index_file=None))
