# Ablation over the released Panoptic FCN + IBS Cityscapes model: lambda_IBS (IBS_WEIGHT) = 2
# instead of 1 (the paper's sweep numbers were not retrieved). The total weight stays
# SEGMENT x IBS_WEIGHT (docs/method.md).
_base_ = ['../panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024-ibs.py']

segment_weight = 4.0  # MODEL.LOSS_WEIGHT.SEGMENT (as the base)
ibs_weight = 2  # IBS_WEIGHT

model = dict(panoptic_head=dict(loss_ibs=dict(loss_weight=segment_weight * ibs_weight)))
