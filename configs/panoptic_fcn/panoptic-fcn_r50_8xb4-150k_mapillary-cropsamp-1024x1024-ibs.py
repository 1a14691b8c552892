# Panoptic FCN R50, Mapillary Vistas, crop sampling + IBS: the released IBS model (PanopticFCN-IBS
# configs/mapillary-vistas/PanopticFCN-R50-mapillaryvistas-ibs-cropsampling.yaml; README row
# 36.3 PQ). IBS_WEIGHT 5.0 on LOSS_WEIGHT.SEGMENT 3.0, partner = the other crop of the pair
# (i XOR 1, docs/method.md).
_base_ = ['./panoptic-fcn_r50_8xb4-150k_mapillary-cropsamp-1024x1024.py']

segment_weight = 3.0  # MODEL.LOSS_WEIGHT.SEGMENT on Vistas (as the base)
ibs_weight = 5.0  # IBS_WEIGHT on Vistas
ibs_partner = 'pair'  # crop-sampled pairs sit at batch indices 2k, 2k + 1

model = dict(
    panoptic_head=dict(
        # loss_ibs_th = SEGMENT x IBS_WEIGHT x raw IBS loss = 15 x raw (docs/method.md)
        loss_ibs=dict(
            _delete_=True,  # the base's loss_ibs is None, not a dict to merge into
            type='IBSLoss',
            partner=ibs_partner,
            num_points=None,
            loss_weight=segment_weight * ibs_weight)))
