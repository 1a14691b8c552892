# Copyright (c) mmibs contributors. All rights reserved.
from .focal_to_zero import focal_loss_to_zero
from .ibs_loss import IBSLoss, ibs_loss
from .ibs_partner_choice import ibs_partners
from .weighted_dice_loss import WeightedDiceLoss, weighted_dice_loss

__all__ = [
    'IBSLoss', 'focal_loss_to_zero', 'ibs_loss', 'ibs_partners', 'WeightedDiceLoss',
    'weighted_dice_loss'
]
