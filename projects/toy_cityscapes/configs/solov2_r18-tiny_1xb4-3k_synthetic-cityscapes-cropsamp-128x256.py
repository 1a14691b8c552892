# The IBS study's SOLOv2 with crop sampling and without IBS: the -cropsamp-...-ibs config's pairs of
# crops with the IBS loss off, so that the study can split the released recipe's effect into its two
# parts.
_base_ = ['./solov2_r18-tiny_1xb4-3k_synthetic-cityscapes-cropsamp-128x256-ibs.py']

model = dict(mask_head=dict(loss_ibs=None))
