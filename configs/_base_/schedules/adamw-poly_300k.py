# Mask2Former schedule (Mask2Former-IBS configs/*/Base-*.yaml): AdamW lr 1e-4, weight decay 0.05,
# backbone lr x0.1, no decay on query/level embeddings and norms, detectron2's WarmupPolyLR
# (power 0.9) over 300k iterations without warm-up (WARMUP_ITERS 0), full-model gradient-norm
# clipping at 0.01. The release trains with AMP: add --amp on GPUs.
max_iters = 300000

embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
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
