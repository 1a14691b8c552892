# Test config for a Mapillary Vistas v1.2 instance-segmentation checkpoint trained with the
# release's code (37 thing classes + no object, in category-id order) and converted with
# tools/model_converters/mask2former_ibs_to_mmibs.py. The release has no Vistas instance yaml:
# the test-time settings are its Vistas panoptic ones with the instance output on.
_base_ = ['../mask2former_r50_8xb2-300k_mapillary-instance-crop-1024x1024-ibs.py']

model = dict(
    panoptic_head=dict(num_queries=100),  # MASK_FORMER.NUM_OBJECT_QUERIES
    test_cfg=dict(
        panoptic_on=False,
        instance_on=True,
        semantic_on=False,
        max_per_image=100,  # instance topk = the number of queries (TEST.DETECTIONS_PER_IMAGE)
        object_mask_thr=0.0,  # unused by the instance output
        iou_thr=0.8))  # unused by the instance output

# INPUT.MIN_SIZE_TEST 2048, MAX_SIZE_TEST 2048 (the Vistas panoptic yaml), PIL bilinear.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='ResizeShortestEdge', scale=2048, max_size=2048, backend='pillow',
         interpolation='bilinear'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
         backend_args={{_base_.backend_args}}),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
