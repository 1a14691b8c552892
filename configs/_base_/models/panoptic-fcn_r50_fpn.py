# Panoptic FCN (Li et al., CVPR 2021) with ResNet-50 + FPN P2-P7, at the released Cityscapes
# values (PanopticFCN-IBS configs/cityscapes/PanopticFCN-R50-cityscapes*.yaml over
# panopticfcn/config.py and detectron2's defaults). IBS is off here; an IBS config sets
# model.panoptic_head.loss_ibs = dict(type='IBSLoss', partner='pair', num_points=None,
# loss_weight=4.0)  # SEGMENT 4.0 x IBS_WEIGHT 1.0 (Vistas: 3.0 x 5.0 = 15.0)
num_things_classes = 8
num_stuff_classes = 11

model = dict(
    type='PanopticFCN',
    # The caffe-style MSRA weights take BGR input minus the BGR ImageNet means, std 1 (as mmdet's
    # caffe configs). The release lists the means in RGB order (PIXEL_MEAN 123.675, 116.28,
    # 103.53) on its BGR input; the configs of the released checkpoints copy that
    # (configs/panoptic_fcn/released/), training from ImageNet weights uses the right order
    # (docs/release_differences.md). Padding to 32 is the release's FPN size divisibility; masks
    # and the semantic map are padded too.
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[103.53, 116.28, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,  # detectron2 FREEZE_AT 2: stem and res2 frozen
        norm_cfg=dict(type='BN', requires_grad=False),  # detectron2 FrozenBN
        norm_eval=True,
        style='caffe',  # RESNETS.STRIDE_IN_1X1 True: the stride sits in the 1x1 conv
        # detectron2://ImageNetPretrained/MSRA/R-50.pkl, as mmdet publishes it
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://detectron2/resnet50_caffe')),
    # P2-P5 plus P6 = conv(P5 output), P7 = conv(ReLU(P6)): mmdet's FPN with 'on_output' and
    # relu_before_extra_convs=True applies the ReLU only before the second extra conv, exactly
    # the release's LastLevelP6P7fromP5. Every conv gets detectron2's c2_xavier_fill
    # (kaiming-uniform, a=1, zero bias), which is mmengine's Caffe2Xavier.
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
        num_outs=6,
        init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')),
    panoptic_head=dict(
        type='PanopticFCNHead',
        num_things_classes=num_things_classes,  # POSITION_HEAD.THING.NUM_CLASSES
        num_stuff_classes=num_stuff_classes,
        stuff_mode='all_classes',  # STUFF.ALL_CLASSES: the region head predicts all 19 classes
        head_module=dict(
            type='PanopticFCNHeadModule',
            encoder_in_indices=(0, 1, 2, 3),  # SEMANTIC_FPN.IN_FEATURES p2-p5
            kernel_in_indices=(1, 2, 3, 4, 5),  # FEATURE_ENCODER.IN_FEATURES p3-p7
            feature_encoder=dict(
                type='PanopticFCNFeatureEncoder',
                in_channels=256,
                in_strides=(4, 8, 16, 32),
                fpn_channels=256,  # SEMANTIC_FPN.CONVS_DIM
                out_channels=256,  # FEATURE_ENCODER.CONVS_DIM (release default 64)
                num_convs=3,
                common_stride=4,
                norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
            position_head=dict(
                type='PanopticFCNPositionHead',
                in_channels=256,
                feat_channels=256,
                num_convs=3,
                deform=True,  # POSITION_HEAD.DEFORM
                coord=False,
                bias_value=-2.19,
                norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
            kernel_head=dict(
                type='PanopticFCNKernelHead',
                in_channels=256,
                feat_channels=256,
                num_convs=3,
                deform=False,
                coord=True,
                norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))),
        loss_pos_th=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
            loss_weight=1.0),  # LOSS_WEIGHT.POSITION
        loss_pos_st=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_seg_th=dict(type='WeightedDiceLoss', loss_weight=4.0),  # LOSS_WEIGHT.SEGMENT
        loss_seg_st=dict(type='WeightedDiceLoss', loss_weight=4.0),
        loss_ibs=None,
        detach_center_weights=False,  # release quirk kept (docs/release_differences.md)
        sync_normalizers=False,  # per-process normalisers, release quirk kept
        stuff_pooling='full_area'),  # release quirk kept: region sum / whole map area
    panoptic_fusion_head=dict(
        type='PanopticFCNFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        stuff_mode='all_classes',
        common_stride=4,
        tie_break='release'),  # exact stuff/thing ties of the stuff argmax go to stuff
    train_cfg=dict(
        target_generator=dict(
            type='PanopticFCNTargetGenerator',
            instance_scales=((1, 128), (64, 256), (128, 512), (256, 1024), (512, 2048)),
            min_overlap=0.7,  # THING.MIN_OVERLAP
            gaussian_sigma_factor=3.0,  # THING.GAUSSIAN_SIGMA
            center_type='mass',  # THING.CENTER_TYPE
            max_instances=150,  # TENSOR_DIM
            region_score_thr=0.5,  # hard-coded in the release's gt_generate.py
            common_stride=4,
            ignore_index=255),
        num_kernels=7,  # THING.POS_NUM
        guidance_thr=0.1),  # hard-coded in the release's loss_single_level
    test_cfg=dict(
        center_pool_sizes=(3, 3, 3, 5, 5),
        thing_score_thr=0.01,  # THING.THRES
        max_candidates=200,  # THING.TOP_NUM (half per level)
        stuff_score_thr=0.1,  # STUFF.THRES
        similarity_thr=0.97,  # INFERENCE.SIMILAR_THRES
        class_specific_fusion=True,  # INFERENCE.CLASS_SPECIFIC
        mask_thr=0.5,  # INFERENCE.INST_THRES
        instance_score_thr=0.05,  # hard-coded in the release's process_inst
        max_per_img=200,  # THING.TOP_NUM
        panoptic_score_thr=0.2,  # COMBINE.INST_THRESH
        overlap_thr=0.5,  # COMBINE.OVERLAP_THRESH
        stuff_area_limit=2048,  # COMBINE.STUFF_AREA_LIMIT
        panoptic_on=True,
        instance_on=True))
