# The IBS study's CondInst + IBS on plain crops: the baseline plus the IBS loss with a random other
# image of the batch as partner. Weight 1 (the mask-loss weight, as configs/condinst's -ibs config;
# provisional, not measured by the paper's loss-ratio rule).
_base_ = ['./condinst_r18-tiny_1xb4-3k_synthetic-cityscapes-crop-128x256.py']

model = dict(
    mask_head=dict(
        loss_ibs=dict(
            _delete_=True, type='IBSLoss', partner='random', num_points=None,
            loss_weight=1.0)))
