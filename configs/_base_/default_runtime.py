# Runtime shared by every mmibs experiment: mmdet's, iteration-based, with mmibs imported.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['mmibs'], allow_failed_imports=False)

# mmengine's Runner whose checkpoints torch.load reads with its defaults (weights_only=True from
# torch 2.6; a plain Runner's checkpoints need weights_only=False) and which refuses a checkpoint
# of another architecture on load (mmibs/engine/checkpoint.py, docs/engine.md). tools/train.py and
# tools/test.py build the runner this names.
runner_type = 'SafeCheckpointRunner'

default_hooks = dict(
    # log_metric_by_epoch=False: validation metrics are logged at the training iteration (with
    # mmengine's default True an iteration-based run logs every validation at step 0)
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=3,
                    save_last=True))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
