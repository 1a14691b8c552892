# Mask2Former R50 (Cheng et al., CVPR 2022) at the Cityscapes panoptic values of the IBS release
# (DdeGeus/Mask2Former-IBS configs/cityscapes/panoptic-segmentation/maskformer2_R50_bs16_90k*.yaml
# and their Base-Cityscapes-PanopticSegmentation*.yaml). The network is mmdet 3.3.0's
# configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py `model`, written out here
# because that file also carries COCO data and schedule keys that cannot be mixed with the mmibs
# bases (tests/test_configs checks that nothing but the values below differs from it):
# - 8 thing + 11 stuff classes, class_weight [1.0] * 19 + [0.1] (NO_OBJECT_WEIGHT 0.1);
# - crops are padded to a fixed 512x1024 batch (the crop size) instead of LSJ's 1024x1024;
# - the backbone's batch norm is trained, as released (RESNETS.NORM "SyncBN", BACKBONE.FREEZE_AT
#   0): SyncBN with requires_grad=True, norm_eval=False, no frozen stage. Without distributed
#   training mmengine's Runner.wrap_model calls revert_sync_batchnorm (mmengine 0.10.7
#   mmengine/runner/runner.py:876-882), so CPU and single-GPU runs train plain BN, which is what
#   torch's SyncBatchNorm computes without a process group (the release on one GPU);
# - test: OBJECT_MASK_THRESHOLD 0.8 and OVERLAP_THRESHOLD 0.8 (mmdet's iou_thr), 100 queries,
#   panoptic and instance outputs (the release also evaluates semantic, which mmdet's metrics do
#   not support).
# IBS is off here: IBS configs switch the head to Mask2FormerIBSHead and set its loss_ibs.
num_things_classes = 8
num_stuff_classes = 11
num_classes = num_things_classes + num_stuff_classes

model = dict(
    type='Mask2Former',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,  # SIZE_DIVISIBILITY 32 of the model
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255,
        batch_augments=[
            dict(
                type='BatchFixedSizePad',
                size=(512, 1024),  # (h, w): INPUT.CROP.SIZE
                img_pad_value=0,
                pad_mask=True,
                mask_pad_value=0,
                pad_seg=True,
                seg_pad_value=255)
        ]),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,  # FREEZE_AT 0: the stem is trained too
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # NORM "SyncBN"
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    panoptic_head=dict(
        type='Mask2FormerHead',
        in_channels=[256, 512, 1024, 2048],  # pass to pixel_decoder inside
        strides=[4, 8, 16, 32],
        feat_channels=256,  # CONVS_DIM
        out_channels=256,  # MASK_DIM: the embedding dimension C of IBS
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=100,  # NUM_OBJECT_QUERIES
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,  # TRANSFORMER_ENC_LAYERS
                layer_cfg=dict(
                    self_attn_cfg=dict(
                        embed_dims=256,
                        num_heads=8,
                        num_levels=3,
                        num_points=4,
                        dropout=0.0,
                        batch_first=True),
                    ffn_cfg=dict(
                        embed_dims=256,
                        feedforward_channels=1024,
                        num_fcs=2,
                        ffn_drop=0.0,
                        act_cfg=dict(type='ReLU', inplace=True)))),
            positional_encoding=dict(num_feats=128, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=128, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=9,  # DEC_LAYERS 10 counts the query-only prediction too
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0, batch_first=True),
                cross_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0, batch_first=True),
                ffn_cfg=dict(
                    embed_dims=256,
                    feedforward_channels=2048,
                    num_fcs=2,
                    ffn_drop=0.0,
                    act_cfg=dict(type='ReLU', inplace=True))),
            init_cfg=None),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=2.0,  # CLASS_WEIGHT
            reduction='mean',
            class_weight=[1.0] * num_classes + [0.1]),  # NO_OBJECT_WEIGHT
        loss_mask=dict(
            type='CrossEntropyLoss', use_sigmoid=True, reduction='mean',
            loss_weight=5.0),  # MASK_WEIGHT
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            reduction='mean',
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0)),  # DICE_WEIGHT
    panoptic_fusion_head=dict(
        type='MaskFormerFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_panoptic=None,
        init_cfg=None),
    train_cfg=dict(
        num_points=12544,  # TRAIN_NUM_POINTS
        oversample_ratio=3.0,  # OVERSAMPLE_RATIO
        importance_sample_ratio=0.75,  # IMPORTANCE_SAMPLE_RATIO
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=2.0),
                dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
            ]),
        sampler=dict(type='MaskPseudoSampler')),
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=False,
        instance_on=True,
        max_per_image=100,
        iou_thr=0.8,  # TEST.OVERLAP_THRESHOLD
        object_mask_thr=0.8,  # TEST.OBJECT_MASK_THRESHOLD
        filter_low_score=True),
    init_cfg=None)
