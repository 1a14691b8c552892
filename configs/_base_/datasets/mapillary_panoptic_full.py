# Mapillary Vistas v1.2 panoptic, full-image training: the same shortest-side resize as crop-based
# training (short side from 1024, 1152, ..., 2048, long side <= 4096), no crop, horizontal flip.
_base_ = ['./mapillary_panoptic_crop.py']

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadCheckedPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='RandomShortestEdgeResize', short_edge_choices={{_base_.short_edges}},
         max_size=4096),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
