# MaskFormer R50, Cityscapes, crop-based training + IBS: the baseline plus the IBS loss on the
# outputs of all 6 decoder layers (MaskFormerIBSHead, docs/method.md). MaskFormer's mask losses
# are dense, so IBS is dense too (num_points=None: the mean over every stride-4 position, no point
# sampling). No crop sampling here, so the partner is a random other image of the per-GPU batch,
# re-drawn at every layer.
#
# lambda_IBS = 20: provisional, not measured. The paper's supplementary sets lambda so that the
# ratio of the IBS loss to the original losses is similar to Panoptic FCN's (for Mask2Former; see
# projects/toy_cityscapes/README.md for that ratio on the toy study); that ratio has not been
# measured for MaskFormer. 20 is MaskFormer's own focal mask-loss weight: the IBS term is the same
# focal loss (alpha 0.25, gamma 2) that a matched mask's background pixels get, so one IBS mask
# weighs as much as a matched mask whose pixels are all background.
_base_ = ['./maskformer_r50_8xb2-90k_cityscapes-crop-512x1024.py']

ibs_weight = 20.0  # provisional, not measured (see above)
ibs_partner = 'random'  # no pairs in the batch

model = dict(
    panoptic_head=dict(
        type='MaskFormerIBSHead',
        loss_ibs=dict(type='IBSLoss', partner=ibs_partner, num_points=None,
                      loss_weight=ibs_weight),
        ibs_skip_first_layer=False))  # every decoder layer: MaskFormer has no query-only head
