# Tiny MaskFormer + IBS with a random other image of the batch as partner (no crop sampling): the
# crop-based tiny baseline plus the IBS settings of
# configs/maskformer/maskformer_r50_8xb2-90k_cityscapes-crop-512x1024-ibs.py (dense, every decoder
# layer, weight 20: provisional, not measured).
_base_ = ['./maskformer_r18-tiny_1xb4-500_synthetic-cityscapes-crop-128x256.py']

model = dict(
    panoptic_head=dict(
        type='MaskFormerIBSHead',
        loss_ibs=dict(type='IBSLoss', partner='random', num_points=None, loss_weight=20.0),
        ibs_skip_first_layer=False))
