# SOLOv2 R50-FPN (Wang et al., NeurIPS 2020) for Cityscapes instance segmentation: mmdet 3.3.0's
# configs/solov2/solov2_r50_fpn_1x_coco.py `model`, written out here because that file also
# carries COCO data and schedule keys, with the 8 Cityscapes thing classes (num_classes=8).
# Everything else is mmdet's: ImageNet torchvision R50 (stem and res2 frozen, BN frozen in eval
# mode), FPN P2-P6, grids 40/36/24/16/12 with mmdet's COCO scale ranges, dynamic 1x1 kernels on
# the 256-channel stride-4 unified mask features, dice mask loss (weight 3) and focal class loss,
# matrix NMS at test time.
# IBS is off here: IBS configs switch the head to SOLOV2IBSHead and set its loss_ibs.
num_things_classes = 8

model = dict(
    type='SOLOv2',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'),
        style='pytorch'),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=0,
        num_outs=5),
    mask_head=dict(
        type='SOLOV2Head',
        num_classes=num_things_classes,
        in_channels=256,
        feat_channels=512,
        stacked_convs=4,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048)),
        pos_scale=0.2,
        num_grids=[40, 36, 24, 16, 12],
        cls_down_index=0,
        mask_feature_head=dict(
            feat_channels=128,
            start_level=0,
            end_level=3,
            out_channels=256,
            mask_stride=4,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        loss_cls=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)),
    test_cfg=dict(
        nms_pre=500,
        score_thr=0.1,
        mask_thr=0.5,
        filter_thr=0.05,
        kernel='gaussian',  # gaussian/linear
        sigma=2.0,
        max_per_img=100))
