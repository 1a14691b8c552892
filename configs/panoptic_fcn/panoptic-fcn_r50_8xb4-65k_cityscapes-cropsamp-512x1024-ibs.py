# Panoptic FCN R50, Cityscapes, crop sampling + IBS: the released IBS model (PanopticFCN-IBS
# configs/cityscapes/PanopticFCN-R50-cityscapes-ibs-cropsampling.yaml; paper/README row 60.8 PQ).
# APPLY_IBS True, IBS_WEIGHT 1.0 on LOSS_WEIGHT.SEGMENT 4.0, partner = the other crop of the pair
# (i XOR 1, docs/method.md), INPUT.NEW_SAMPLING True with the Cityscapes scales.
_base_ = ['./panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024.py']

segment_weight = 4.0  # MODEL.LOSS_WEIGHT.SEGMENT (as the base)
ibs_weight = 1.0  # IBS_WEIGHT: lambda_IBS 1 on Cityscapes (supplementary)
ibs_partner = 'pair'  # crop-sampled pairs sit at batch indices 2k, 2k + 1

model = dict(
    panoptic_head=dict(
        # loss_ibs_th = SEGMENT x IBS_WEIGHT x raw IBS loss (docs/method.md)
        loss_ibs=dict(
            _delete_=True,  # the base's loss_ibs is None, not a dict to merge into
            type='IBSLoss',
            partner=ibs_partner,
            num_points=None,  # dense: mean over all stride-4 pixels
            loss_weight=segment_weight * ibs_weight)))
