# Ablation over the released Panoptic FCN + IBS Cityscapes model: IBS partner = a uniformly random
# other image of the per-GPU batch instead of the other crop of the same pair (same category at
# the same target scale: hard negatives). Measures the value of same-class pairing
# (docs/method.md).
_base_ = ['../panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024-ibs.py']

ibs_partner = 'random'

model = dict(panoptic_head=dict(loss_ibs=dict(partner=ibs_partner)))
