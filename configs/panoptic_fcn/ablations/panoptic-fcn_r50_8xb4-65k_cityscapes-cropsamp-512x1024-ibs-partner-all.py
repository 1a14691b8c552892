# Ablation over the released Panoptic FCN + IBS Cityscapes model: IBS against every other image of
# the per-GPU batch, averaged (an extension the paper did not try; docs/method.md). With
# 4 images per GPU each image has 3 partners, so IBS costs 3x the released products.
_base_ = ['../panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024-ibs.py']

ibs_partner = 'all'

model = dict(panoptic_head=dict(loss_ibs=dict(partner=ibs_partner)))
