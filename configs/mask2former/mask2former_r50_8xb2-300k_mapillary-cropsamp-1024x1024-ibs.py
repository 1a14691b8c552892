# Mask2Former R50, Mapillary Vistas, crop sampling + IBS: the released model
# (DdeGeus/Mask2Former-IBS
# configs/mapillary-vistas/panoptic-segmentation/maskformer_R50_bs16_300k_ibs_cropsampling.yaml;
# release README row 42.2 PQ): IBS_WEIGHT 100, IBS_POINT_SAMPLING True, partner the other crop of
# the pair (i XOR 1, docs/method.md).
_base_ = ['./mask2former_r50_8xb2-300k_mapillary-cropsamp-1024x1024.py']

ibs_weight = 100.0  # MODEL.MASK_FORMER.IBS_WEIGHT (released Vistas value)
ibs_partner = 'pair'  # crop-sampled pairs sit at batch indices 2k, 2k + 1

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
