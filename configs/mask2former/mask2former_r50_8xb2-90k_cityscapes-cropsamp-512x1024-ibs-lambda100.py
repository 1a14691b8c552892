# Mask2Former R50, Cityscapes, crop sampling + IBS with lambda_IBS = 100, the value the
# supplementary states for Mask2Former (the released Cityscapes config uses 50; see
# docs/release_differences.md).
_base_ = ['./mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024-ibs.py']

ibs_weight = 100.0

model = dict(panoptic_head=dict(loss_ibs=dict(loss_weight=ibs_weight)))
