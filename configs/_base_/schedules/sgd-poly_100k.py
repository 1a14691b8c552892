# Panoptic FCN schedule (ibs_method.md §5.6): SGD momentum 0.9, weight decay 1e-4, poly (power 0.9)
# over 100k iterations with a linear warm-up, element-wise gradient clipping at 5.0 (detectron2's
# CLIP_TYPE "value", which the release inherits). The learning rate is set by each experiment.
max_iters = 100000
warmup_iters = 1000

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(type='value', clip_value=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0, end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
