# The small Mask2Former + IBS of the parity fixture (tests/data/parity/mask2former/), as mmibs
# builds it: the released Cityscapes checkpoint config
# (configs/mask2former/released/mask2former_r50_release_cityscapes-panoptic.py) shrunk exactly as
# tests/test_parity/mask2former_parity_common.SMALL_RELEASE_CFG shrinks the release's yaml:
# ResNet-18, 32 channels, 4 attention heads, 2 encoder layers (FFN 1024, fixed in the release),
# 12 queries, 3 decoder layers (DEC_LAYERS 4), 256 points, 30 detections per image, 64x128 input.
# tests/test_parity/test_mask2former_parity.py converts the fixture's release weights with
# tools/model_converters/mask2former_ibs_to_mmibs.py into this model, and runs tools/test.py on it
# (data_root set with --cfg-options).
_base_ = ['../../../configs/mask2former/released/mask2former_r50_release_cityscapes-panoptic.py']

channels = 32
num_points = 256
image_size = (64, 128)  # (h, w)

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
             mask_pad_value=0, pad_seg=True, seg_pad_value=255)
    ]),
    backbone=dict(depth=18, init_cfg=None),
    panoptic_head=dict(
        in_channels=[64, 128, 256, 512],
        feat_channels=channels,
        out_channels=channels,
        num_queries=12,
        pixel_decoder=dict(
            encoder=dict(
                num_layers=2,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=channels, num_heads=4),
                    ffn_cfg=dict(embed_dims=channels, feedforward_channels=1024))),
            positional_encoding=dict(num_feats=channels // 2)),
        positional_encoding=dict(num_feats=channels // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=channels, num_heads=4),
                cross_attn_cfg=dict(embed_dims=channels, num_heads=4),
                ffn_cfg=dict(embed_dims=channels, feedforward_channels=64))),
        loss_ibs=dict(num_points=num_points)),
    train_cfg=dict(num_points=num_points),
    test_cfg=dict(max_per_image=30))

# the 64x128 image as it is (the released config's 1024 / 2048 resize would blow it up)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=64, max_size=128, backend='pillow',
         interpolation='bilinear'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
