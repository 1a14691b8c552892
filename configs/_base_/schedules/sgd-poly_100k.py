# Panoptic FCN schedule, detectron2's solver as the release configures it (PanopticFCN-IBS
# configs/*/PanopticFCN-R50-*.yaml, panopticfcn/build_solver.py): SGD momentum 0.9, weight decay
# 1e-4 except on normalisation layers (SOLVER.WEIGHT_DECAY_NORM 0; biases keep 1e-4 and lr x1:
# WEIGHT_DECAY_BIAS None, BIAS_LR_FACTOR 1), element-wise gradient clipping at 5.0 (CLIP_TYPE
# "value"), WarmupPolyLR over 100k iterations. The learning rate is set by each
# experiment.
#
# WarmupPolyLR: lr(t) = base * w(t) * (1 - t / max_iters) ** 0.9 with the linear warm-up
# w(t) = 0.001 + (1 - 0.001) * t / warmup_iters for t < warmup_iters, 1 after. mmengine's
# LinearLR and PolyLR count end - begin - 1 steps (total_iters), so `end` is one past
# detectron2's count: the warm-up reaches 1 at t = warmup_iters and the poly factor is
# (1 - t / max_iters) ** 0.9 (iteration max_iters - 1 gets base * (1 / max_iters) ** 0.9, not 0).
max_iters = 100000
warmup_iters = 1000

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(type='value', clip_value=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters + 1),
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
