# Test config for a Mapillary Vistas v1.2 panoptic checkpoint of the release
# (DdeGeus/Mask2Former-IBS
# configs/mapillary-vistas/panoptic-segmentation/maskformer_R50_bs16_300k_ibs_cropsampling.yaml,
# or its crop-based baseline maskformer_R50_bs16_300k.yaml: same network) converted with
# tools/model_converters/mask2former_ibs_to_mmibs.py. The model and training settings are those of
# the shipped crop sampling + IBS config; the test-time settings below are the yaml's.
_base_ = ['../mask2former_r50_8xb2-300k_mapillary-cropsamp-1024x1024-ibs.py']

model = dict(
    panoptic_head=dict(num_queries=100),  # MASK_FORMER.NUM_OBJECT_QUERIES
    test_cfg=dict(
        panoptic_on=True,  # TEST.PANOPTIC_ON
        instance_on=False,  # TEST.INSTANCE_ON False
        semantic_on=False,  # TEST.SEMANTIC_ON has no mmdet metric
        max_per_image=100,
        object_mask_thr=0.0,  # TEST.OBJECT_MASK_THRESHOLD
        iou_thr=0.8))  # TEST.OVERLAP_THRESHOLD

# INPUT.MIN_SIZE_TEST 2048, MAX_SIZE_TEST 2048: detectron2's ResizeShortestEdge (short side 2048,
# then long side <= 2048, sizes rounded with int(x + 0.5)), PIL bilinear on uint8 images.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='ResizeShortestEdge', scale=2048, max_size=2048, backend='pillow',
         interpolation='bilinear'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
