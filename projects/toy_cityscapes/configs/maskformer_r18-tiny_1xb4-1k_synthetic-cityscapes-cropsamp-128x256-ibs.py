# Tiny MaskFormer, crop sampling + IBS between the two crops of each pair (partner 'pair'): the
# released Mask2Former recipe (crop sampling + IBS) on the tiny MaskFormer, IBS dense on every
# decoder layer, weight 4 by the loss-ratio rule (the -crop-...-ibs config says how).
_base_ = ['./maskformer_r18-tiny_1xb4-1k_synthetic-cityscapes-cropsamp-128x256.py']

model = dict(
    panoptic_head=dict(
        type='MaskFormerIBSHead',
        loss_ibs=dict(type='IBSLoss', partner='pair', num_points=None, loss_weight=4.0),
        ibs_skip_first_layer=False))
