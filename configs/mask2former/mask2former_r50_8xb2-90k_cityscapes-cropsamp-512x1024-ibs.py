# Mask2Former R50, Cityscapes, crop sampling + IBS: the released model (DdeGeus/Mask2Former-IBS
# configs/cityscapes/panoptic-segmentation/maskformer2_R50_bs16_90k_ibs_cropsampling.yaml; release
# README row 62.4 PQ). IBS_WEIGHT 50 as released (the supplementary says 100: see the -lambda100
# variant), IBS_POINT_SAMPLING True. The release draws a random other image, which on 8 GPUs x 1
# pair is always the pair partner; mmibs pairs explicitly (i XOR 1), so the same holds on any
# number of GPUs (docs/method.md, partner modes).
_base_ = ['./mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024.py']

ibs_weight = 50.0  # MODEL.MASK_FORMER.IBS_WEIGHT (released Cityscapes value)
ibs_partner = 'pair'  # crop-sampled pairs sit at batch indices 2k, 2k + 1

model = dict(
    panoptic_head=dict(
        type='Mask2FormerIBSHead',
        loss_ibs=dict(
            type='IBSLoss',
            partner=ibs_partner,
            num_points=12544,  # IBS_POINT_SAMPLING: the mask loss's uncertainty sampling
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            loss_weight=ibs_weight),
        ibs_skip_first_layer=True))  # no IBS on the query-only prediction (release: i > 0)
