# Panoptic FCN R50, Cityscapes, crop-based training + IBS without crop sampling (an ablation: the
# split of the released gain between IBS and crop sampling, docs/data.md).
# Without crop-sampled pairs the partner is a random other image of the per-GPU batch, as the
# release does when INPUT.NEW_SAMPLING is off (docs/method.md).
_base_ = ['./panoptic-fcn_r50_8xb4-65k_cityscapes-crop-512x1024.py']

segment_weight = 4.0  # MODEL.LOSS_WEIGHT.SEGMENT (as the base)
ibs_weight = 1.0  # IBS_WEIGHT: lambda_IBS 1 on Cityscapes (supplementary)
ibs_partner = 'random'  # no pairs in the batch

model = dict(
    panoptic_head=dict(
        # loss_ibs_th = SEGMENT x IBS_WEIGHT x raw IBS loss (docs/method.md)
        loss_ibs=dict(
            _delete_=True,  # the base's loss_ibs is None, not a dict to merge into
            type='IBSLoss',
            partner=ibs_partner,
            num_points=None,  # dense: mean over all stride-4 pixels
            loss_weight=segment_weight * ibs_weight)))
