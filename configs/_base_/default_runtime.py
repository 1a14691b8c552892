# Runtime shared by every mmibs experiment: mmdet's, iteration-based, with mmibs imported.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['mmibs'], allow_failed_imports=False)

# mmengine's Runner with atomic checkpoint (and last_checkpoint) writes, a refusal of checkpoints
# of another architecture on load, and checkpoints torch's weights_only loader reads
# (mmibs/engine/runner/safe_checkpoint_runner.py, docs/engine.md). tools/train.py and
# tools/test.py build the runner this names.
runner_type = 'SafeCheckpointRunner'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # mmengine's CheckpointHook with an atomic last_checkpoint pointer (SafeCheckpointRunner builds
    # this one for 'CheckpointHook' too)
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=3,
                    save_last=True))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
# RNG states go into every checkpoint, so a resumed run continues the interrupted one's random
# streams (mmibs/engine/hooks/rng_state_hook.py). A config that sets its own custom_hooks
# replaces this list: list RNGStateHook there again.
custom_hooks = [dict(type='RNGStateHook')]
