# Mask2Former schedule (Mask2Former-IBS configs/*/Base-*.yaml): AdamW lr 1e-4, weight decay 0.05,
# backbone lr x0.1, no decay on query/level embeddings and norms, detectron2's WarmupPolyLR
# (power 0.9) over 300k iterations without warm-up (WARMUP_ITERS 0), full-model gradient-norm
# clipping at 0.01, mixed precision (SOLVER.AMP.ENABLED).
max_iters = 300000

embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
# SOLVER.WEIGHT_DECAY_NORM 0 covers the backbone's batch norm as well (trained on Cityscapes):
# mmengine applies norm_decay_mult only to parameters that no custom key matches, and 'backbone'
# matches them, so the backbone norms get their own (longer, hence first-matched) keys with decay 0.
# With Vistas' frozen batch norm they change nothing.
backbone_norm = dict(lr_mult=0.1, decay_mult=0.0)
# Mixed precision as released: float16 autocast + dynamic loss scaling, the gradients unscaled
# before the full-model clipping, as detectron2's AMPTrainer does. mmengine's AmpOptimWrapper needs
# a GPU; without one tools/train.py switches to CPUAmpOptimWrapper (bfloat16 autocast).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
            **{
                f'.{norm}.{param}': backbone_norm
                for norm in ('bn1', 'bn2', 'bn3', 'downsample.1') for param in ('weight', 'bias')
            },
        },
        norm_decay_mult=0.0),
    clip_grad=dict(max_norm=0.01, norm_type=2))
# detectron2's WarmupPolyLR without warm-up: lr(t) = base * (1 - t / max_iters) ** 0.9.
# mmengine's PolyLR counts end - begin - 1 steps, hence end = max_iters + 1.
param_scheduler = dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0,
                       end=max_iters + 1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
