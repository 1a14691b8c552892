# Tiny Mask2Former, crop sampling + IBS between the two crops of each pair (partner 'pair'): the
# released recipe (configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024-ibs.py)
# at the tiny size, IBS at 1/16 of the points.
# IBS weight 20 (the release's 50 divided by 2.5) by the paper's rule for Mask2Former's weight:
# mask2former_r18-tiny_1xb4-2k_synthetic-cityscapes-crop-128x256-ibs.py says how it was measured.
_base_ = ['./mask2former_r18-tiny_1xb4-2k_synthetic-cityscapes-cropsamp-128x256.py']

model = dict(
    panoptic_head=dict(
        type='Mask2FormerIBSHead',
        loss_ibs=dict(
            type='IBSLoss', partner='pair', num_points={{_base_.num_points}},
            oversample_ratio=3.0, importance_sample_ratio=0.75, loss_weight=20.0),
        ibs_skip_first_layer=True))
