# Tiny Mask2Former + IBS with a random other image of the batch as partner (no crop sampling):
# the crop-based tiny baseline plus the IBS settings of
# configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-crop-512x1024-ibs.py (weight 50, point
# sampling, no IBS on the query-only prediction) at 1/16 of the points.
_base_ = ['./mask2former_r18-tiny_1xb4-500_synthetic-cityscapes-crop-128x256.py']

model = dict(
    panoptic_head=dict(
        type='Mask2FormerIBSHead',
        loss_ibs=dict(
            type='IBSLoss', partner='random', num_points={{_base_.num_points}},
            oversample_ratio=3.0, importance_sample_ratio=0.75, loss_weight=50.0),
        ibs_skip_first_layer=True))
