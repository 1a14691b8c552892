# Panoptic FCN R50 at the released Mapillary Vistas values (PanopticFCN-IBS
# configs/mapillary-vistas/PanopticFCN-R50-mapillaryvistas*.yaml): 37 things,
# the region head predicts the 28 stuff classes plus one merged "thing" class (STUFF.WITH_THING,
# NUM_CLASSES 29), POS_NUM 3, TENSOR_DIM 400, the last instance scale range up to 4096,
# LOSS_WEIGHT.SEGMENT 3.0, THING.THRES 0.2, SIMILAR_THRES 0.95. IBS is off here.
_base_ = ['./panoptic-fcn_r50_fpn.py']

num_things_classes = 37  # POSITION_HEAD.THING.NUM_CLASSES
num_stuff_classes = 28  # POSITION_HEAD.STUFF.NUM_CLASSES 29 = 28 stuff + 1 merged thing class
segment_weight = 3.0  # MODEL.LOSS_WEIGHT.SEGMENT

model = dict(
    panoptic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        stuff_mode='with_thing',  # STUFF.WITH_THING True, ALL_CLASSES False
        loss_seg_th=dict(loss_weight=segment_weight),
        loss_seg_st=dict(loss_weight=segment_weight)),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        stuff_mode='with_thing'),
    train_cfg=dict(
        target_generator=dict(
            # KERNEL_HEAD.INSTANCE_SCALES
            instance_scales=((1, 128), (64, 256), (128, 512), (256, 1024), (512, 4096)),
            max_instances=400),  # TENSOR_DIM
        num_kernels=3),  # THING.POS_NUM
    test_cfg=dict(
        thing_score_thr=0.2,  # THING.THRES
        similarity_thr=0.95))  # INFERENCE.SIMILAR_THRES
