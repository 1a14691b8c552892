# Mask2Former R50, Cityscapes, crop-based training + IBS without crop sampling (an ablation of the
# paper): the released Mask2Former + IBS loss (docs/method.md) with a random other image of the
# per-GPU batch as partner, re-drawn at every prediction head (the release's behaviour).
_base_ = ['./mask2former_r50_8xb2-90k_cityscapes-crop-512x1024.py']

ibs_weight = 50.0  # MODEL.MASK_FORMER.IBS_WEIGHT of the released Cityscapes config
ibs_partner = 'random'  # no pairs in the batch

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
