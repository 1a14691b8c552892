# A tiny Mask2Former inheriting mmdet's panoptic base, for tests of tools/train.py, --resume,
# tools/test.py and `mim train mmibs`. Paths point at a set written by
# projects.toy_cityscapes.synthetic.write_tiny_coco_panoptic; tests override `data_root` with
# --cfg-options.
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py']
custom_imports = dict(imports=['mmibs'], allow_failed_imports=False)

data_root = 'data/tiny_coco_panoptic/'
num_things_classes = 2
num_stuff_classes = 1
num_classes = num_things_classes + num_stuff_classes
image_size = (64, 96)
metainfo = dict(
    classes=('car', 'person', 'road'),
    thing_classes=('car', 'person'),
    stuff_classes=('road', ),
    palette=[(0, 0, 142), (220, 20, 60), (128, 64, 128)])

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
             mask_pad_value=0, pad_seg=True, seg_pad_value=255)
    ]),
    backbone=dict(depth=18, base_channels=16, init_cfg=None),
    panoptic_head=dict(
        in_channels=[16, 32, 64, 128],
        feat_channels=32,
        out_channels=32,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=10,
        pixel_decoder=dict(
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=32, num_heads=4),
                    ffn_cfg=dict(embed_dims=32, feedforward_channels=64))),
            positional_encoding=dict(num_feats=16)),
        positional_encoding=dict(num_feats=16),
        transformer_decoder=dict(
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=32, num_heads=4),
                cross_attn_cfg=dict(embed_dims=32, num_heads=4),
                ffn_cfg=dict(embed_dims=32, feedforward_channels=64))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    train_cfg=dict(num_points=256),
    test_cfg=dict(max_per_image=10))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
_dataset = dict(
    type='CocoPanopticDataset',
    data_root=data_root,
    metainfo=metainfo,
    ann_file='annotations/panoptic.json',
    data_prefix=dict(img='images/', seg='annotations/panoptic/'),
    filter_cfg=None,
    backend_args=None)
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_dataset, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(_dataset, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic.json',
         seg_prefix=data_root + 'annotations/panoptic/', backend_args=None)
]
test_evaluator = val_evaluator

max_iters = 4
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
                       milestones=[max_iters], gamma=0.1)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2, save_last=True,
                    max_keep_ckpts=3),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(type='LogProcessor', window_size=1, by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=2)
