# Ablation over the released Panoptic FCN + IBS Cityscapes model: embedding dimension C = 64 (the
# original Panoptic FCN default FEATURE_ENCODER.CONVS_DIM) instead of the 256 of the IBS configs
# (docs/method.md). C is the width of the stride-4 feature F and of the thing and
# stuff embeddings, so IBS's cross-image products shrink with it.
_base_ = ['../panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024-ibs.py']

embed_channels = 64  # FEATURE_ENCODER.CONVS_DIM

model = dict(
    panoptic_head=dict(head_module=dict(feature_encoder=dict(out_channels=embed_channels))))
