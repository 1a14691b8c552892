# Test config for a Cityscapes panoptic checkpoint of the release (DdeGeus/Mask2Former-IBS
# configs/cityscapes/panoptic-segmentation/maskformer2_R50_bs16_90k_ibs_cropsampling.yaml, or its
# crop-based baseline maskformer2_R50_bs16_90k.yaml: same network) converted with
# tools/model_converters/mask2former_ibs_to_mmibs.py. The model and training settings are those of
# the shipped crop sampling + IBS config; the test-time settings below are the yaml's, written out
# so that tests/test_configs can check them one by one.
_base_ = ['../mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024-ibs.py']

model = dict(
    panoptic_head=dict(num_queries=100),  # MASK_FORMER.NUM_OBJECT_QUERIES
    test_cfg=dict(
        panoptic_on=True,  # TEST.PANOPTIC_ON
        instance_on=True,  # TEST.INSTANCE_ON (TEST.SEMANTIC_ON has no mmdet metric)
        semantic_on=False,
        max_per_image=100,  # instance topk = the number of queries
        object_mask_thr=0.8,  # TEST.OBJECT_MASK_THRESHOLD
        iou_thr=0.8))  # TEST.OVERLAP_THRESHOLD

# INPUT.MIN_SIZE_TEST 1024, MAX_SIZE_TEST 2048 with detectron2's ResizeShortestEdge, which
# resizes uint8 images with PIL's bilinear filter: a no-op on the 1024x2048 Cityscapes images,
# written out for images of another size.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='ResizeShortestEdge', scale=1024, max_size=2048, backend='pillow',
         interpolation='bilinear'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
