# Cityscapes panoptic, full-image training (Fig. 1 (a) of the IBS paper): the same random resize
# as crop-based training (0.5-2.0 of 2048x1024), no crop, horizontal flip.
_base_ = ['./cityscapes_panoptic_crop.py']

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
