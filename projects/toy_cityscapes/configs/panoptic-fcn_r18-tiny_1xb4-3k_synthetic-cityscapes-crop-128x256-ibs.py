# The end-to-end demo's IBS-only model: the baseline demo config (plain crops, batch 4) plus the IBS
# loss with a random other image of the batch as partner (no crop-sampled pairs), weight
# SEGMENT 4 x IBS 1 as the Cityscapes configs. It isolates what IBS itself does; the -cropsamp-
# config adds the released crop sampling.
_base_ = ['./panoptic-fcn_r18-tiny_1xb4-3k_synthetic-cityscapes-crop-128x256.py']

model = dict(
    panoptic_head=dict(
        loss_ibs=dict(
            _delete_=True, type='IBSLoss', partner='random', num_points=None,
            loss_weight=4.0 * 1.0)))
