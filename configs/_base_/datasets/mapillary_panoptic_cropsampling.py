# Mapillary Vistas v1.2 panoptic with crop sampling (docs/data.md): pairs of 1024x1024 crops of
# one uniformly drawn category at a shared target scale s in {32, ..., 512}; things resized so
# that sqrt(box area) = s (short side in [1024, 6192], long side <= 9288, the released values),
# stuff with the ordinary shortest-side resize (short side from 1024, 1152, ..., 2048); crowd
# regions can be drawn, as released; thing instances left empty by the crop are dropped.
# `batch_size` counts pairs.
_base_ = ['./mapillary_panoptic_crop.py']

crop_size = (1024, 1024)  # (h, w)
crop_sampling_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='ResizeToSegmentScale', side_min=1024, side_max=6192, overall_max=9288,
         stuff_resize=dict(type='RandomShortestEdgeResize',
                           short_edge_choices={{_base_.short_edges}}, max_size=4096)),
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
            version='v1.2',
            data_root={{_base_.data_root}},
            ann_file='annotations/mapillary_vistas_v1.2_panoptic_train.json',
            data_prefix=dict(img='training/images/', seg='training/v1.2/panoptic/'),
            pipeline=[],
            backend_args={{_base_.backend_args}}),
        pipeline=crop_sampling_pipeline,
        scales=(32, 64, 128, 256, 512),
        index_file=None))
