# Tiny MaskFormer + IBS with a random other image of the batch as partner (no crop sampling): the
# crop-based tiny baseline plus the IBS settings of
# configs/maskformer/maskformer_r50_8xb2-90k_cityscapes-crop-512x1024-ibs.py (dense, every decoder
# layer). Weight 4 by the paper's loss-ratio rule: at 12 the weighted IBS loss, summed over the
# decoder layers, was 0.086 of the other losses against Panoptic FCN's 0.028 at its released
# weight, so 12 x 0.028 / 0.086 = 3.9 (a first-order estimate; measured on the synthetic data with
# crop sampling + IBS, 2 seeds, 500 iterations: docs/results/ibs_loss_ratio_maskformer.md). The 12
# came from the same measurement with transformer dropout 0.1, when the tiny MaskFormer's queries
# had collapsed (docs/results/ibs_loss_ratio_heads.md).
_base_ = ['./maskformer_r18-tiny_1xb4-1k_synthetic-cityscapes-crop-128x256.py']

model = dict(
    panoptic_head=dict(
        type='MaskFormerIBSHead',
        loss_ibs=dict(type='IBSLoss', partner='random', num_points=None, loss_weight=4.0),
        ibs_skip_first_layer=False))
