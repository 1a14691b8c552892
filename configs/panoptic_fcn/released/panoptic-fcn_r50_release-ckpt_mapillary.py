# The authors' released Panoptic FCN R50 Mapillary Vistas v1.2 baseline (PanopticFCN-IBS
# configs/mapillary-vistas/PanopticFCN-R50-mapillaryvistas.yaml; README: 35.5 PQ, 74.7 Acc_th,
# 77.9 Prec_th), converted with tools/model_converters/panopticfcn_ibs_to_mmibs.py: evaluation only.
_base_ = ['../panoptic-fcn_r50_8xb4-150k_mapillary-crop-1024x1024.py']

# The release normalises its BGR input with PIXEL_MEAN [123.675, 116.28, 103.53] (RGB order) and
# PIXEL_STD 1; its weights were trained that way, so this config feeds them the same input
# (docs/release_differences.md). Training configs use the BGR means of the MSRA weights.
model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[1.0, 1.0, 1.0], bgr_to_rgb=False))

# Test time as the release (INPUT.MIN_SIZE_TEST 2048, MAX_SIZE_TEST 2048): detectron2 decodes
# with PIL and resizes with PIL bilinear so that the long side is 2048 (int(x + 0.5) rounding);
# outputs are at the original size.
backend_args = None
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', backend_args=backend_args),
    dict(
        type='ResizeShortestEdge',
        scale=2048,
        max_size=2048,
        backend='pillow',
        interpolation='bilinear'),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
