# Panoptic FCN R50, Mapillary Vistas, crop-based training + IBS without crop sampling (ablation,
# docs/method.md): the partner is a random other image of the per-GPU batch.
_base_ = ['./panoptic-fcn_r50_8xb4-150k_mapillary-crop-1024x1024.py']

segment_weight = 3.0  # MODEL.LOSS_WEIGHT.SEGMENT on Vistas (as the base)
ibs_weight = 5.0  # IBS_WEIGHT on Vistas (PanopticFCN-IBS mapillary-vistas yaml)
ibs_partner = 'random'  # no pairs in the batch

model = dict(
    panoptic_head=dict(
        # loss_ibs_th = SEGMENT x IBS_WEIGHT x raw IBS loss = 15 x raw (docs/method.md)
        loss_ibs=dict(
            _delete_=True,  # the base's loss_ibs is None, not a dict to merge into
            type='IBSLoss',
            partner=ibs_partner,
            num_points=None,
            loss_weight=segment_weight * ibs_weight)))
