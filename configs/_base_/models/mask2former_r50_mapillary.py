# Mask2Former R50 at the Mapillary Vistas v1.2 panoptic values of the IBS release
# (DdeGeus/Mask2Former-IBS
# configs/mapillary-vistas/panoptic-segmentation/maskformer_R50_bs16_300k*.yaml and their
# Base-MapillaryVistas-PanopticSegmentation*.yaml): 37 thing + 28 stuff classes,
# class_weight [1.0] * 65 + [0.1], 1024x1024 crops padded to 1024x1024 (SIZE_DIVISIBILITY 1024),
# test OBJECT_MASK_THRESHOLD 0.0, OVERLAP_THRESHOLD 0.8, 100 queries, panoptic output only
# (TEST.INSTANCE_ON False).
# Batch norm: the Vistas yamls leave RESNETS.NORM at detectron2's default "FrozenBN" (the
# "SyncBN" line is commented out) with FREEZE_AT 0: frozen statistics and affine, every conv
# trained. That is mmdet's frozen BN (requires_grad=False, norm_eval=True) with no frozen stage.
_base_ = ['./mask2former_r50_cityscapes.py']

num_things_classes = 37
num_stuff_classes = 28
num_classes = num_things_classes + num_stuff_classes

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(
            type='BatchFixedSizePad',
            size=(1024, 1024),
            img_pad_value=0,
            pad_mask=True,
            mask_pad_value=0,
            pad_seg=True,
            seg_pad_value=255)
    ]),
    backbone=dict(norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True),
    panoptic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    test_cfg=dict(instance_on=False, object_mask_thr=0.0))
