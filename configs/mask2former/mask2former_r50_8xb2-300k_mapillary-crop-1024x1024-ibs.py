# Mask2Former R50, Mapillary Vistas, crop-based training + IBS without crop sampling (an ablation
# of the paper): random other image of the per-GPU batch as partner (docs/method.md), weight 100.
_base_ = ['./mask2former_r50_8xb2-300k_mapillary-crop-1024x1024.py']

ibs_weight = 100.0  # MODEL.MASK_FORMER.IBS_WEIGHT of the released Vistas config
ibs_partner = 'random'  # no pairs in the batch

model = dict(
    panoptic_head=dict(
        type='Mask2FormerIBSHead',
        loss_ibs=dict(
            type='IBSLoss',
            partner=ibs_partner,
            num_points=12544,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            loss_weight=ibs_weight),
        ibs_skip_first_layer=True))
