# Runtime shared by every mmibs experiment: mmdet's, iteration-based, with mmibs imported.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['mmibs'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=3,
                    save_last=True))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
# RNG states go into every checkpoint, so a resumed run continues the interrupted one's random
# streams (mmibs/engine/hooks/rng_state_hook.py). A config that sets its own custom_hooks
# replaces this list: list RNGStateHook there again.
custom_hooks = [dict(type='RNGStateHook')]
