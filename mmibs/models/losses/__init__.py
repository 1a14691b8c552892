# Copyright (c) mmibs contributors. All rights reserved.
# Each helper module is imported here once it exists; keep __all__ in sync.
from .focal_to_zero import focal_loss_to_zero
from .ibs_loss import IBSLoss, ibs_loss, ibs_partners
from .weighted_dice_loss import WeightedDiceLoss, weighted_dice_loss

__all__ = [
    'IBSLoss', 'focal_loss_to_zero', 'ibs_loss', 'ibs_partners', 'WeightedDiceLoss',
    'weighted_dice_loss'
]
