# The authors' released Panoptic FCN R50 Cityscapes baseline (PanopticFCN-IBS
# configs/cityscapes/PanopticFCN-R50-cityscapes.yaml; README: 59.5 PQ, 81.3 Acc_th, 86.8 Prec_th),
# converted with tools/model_converters/panopticfcn_ibs_to_mmibs.py: evaluation only.
_base_ = ['../panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024.py']

# The release normalises its BGR input with PIXEL_MEAN [123.675, 116.28, 103.53] (RGB order) and
# PIXEL_STD 1; its weights were trained that way, so this config feeds them the same input
# (docs/release_differences.md). Training configs use the BGR means of the MSRA weights.
model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[1.0, 1.0, 1.0], bgr_to_rgb=False))

# Cityscapes test images (1024x2048) go in at full size, as the release's ResizeShortestEdge(1024,
# max 2048) leaves them; outputs are at the original size.
