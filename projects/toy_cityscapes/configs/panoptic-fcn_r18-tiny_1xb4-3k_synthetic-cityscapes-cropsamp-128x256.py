# The demo's crop-sampling model without IBS: the -cropsamp-...-ibs config's pairs of crops (one
# category, shared target scale) with the IBS loss off, so that the study
# (projects/toy_cityscapes/ibs_study.py) can split the released recipe's effect into its two parts.
_base_ = ['./panoptic-fcn_r18-tiny_1xb4-3k_synthetic-cityscapes-cropsamp-128x256-ibs.py']

model = dict(panoptic_head=dict(loss_ibs=None))
