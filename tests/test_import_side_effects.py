# Copyright (c) mmibs contributors. All rights reserved.
"""``import mmibs`` changes nothing in mmengine, mmdet or torch.

In a fresh interpreter, every attribute of the modules mmibs once patched (and of the classes
defined in them) is recorded, mmibs is imported, and each attribute must still be the very same
object: not replaced, not removed. New attributes are allowed only where they are submodules that
the import loaded. Behaviours beyond mmdet's are components a config or tool chooses by name
(``SafeCheckpointRunner``, ``AtomicCheckpointHook``, ``setup_cpu_distributed``,
``LoadCheckedPanopticAnnotations``, see ``docs/engine.md``). The one thing the import adds to is
torch's ``weights_only`` allow-list (``mmibs.engine.allow_mmengine_checkpoint_globals``).
"""
import json
import os
import subprocess
import sys
import textwrap

# The modules whose attributes mmibs replaced when it installed its behaviours on import:
# LocalBackend.put/put_text, the checkpoint hook module's `open`, `_load_checkpoint_to_model` and
# Runner.load_checkpoint, HistoryBuffer.__getstate__, mmengine's dist init functions,
# MMDistributedDataParallel.__init__, LoadPanopticAnnotations._load_masks_and_semantic_segs,
# torch.cuda.set_device (now only switched off inside one CPU process-group start).
WATCHED_MODULES = [
    'mmengine.fileio',
    'mmengine.fileio.backends',
    'mmengine.fileio.backends.local_backend',
    'mmengine.hooks',
    'mmengine.hooks.checkpoint_hook',
    'mmengine.runner',
    'mmengine.runner.runner',
    'mmengine.runner.checkpoint',
    'mmengine.logging',
    'mmengine.logging.history_buffer',
    'mmengine.dist',
    'mmengine.dist.utils',
    'mmengine.model',
    'mmengine.model.wrappers',
    'mmengine.model.wrappers.distributed',
    'mmdet.datasets.transforms',
    'mmdet.datasets.transforms.loading',
    'torch.cuda',
]

# Attributes named explicitly so that the test fails loudly if one of them is not even looked at.
MUST_BE_WATCHED = [
    'mmengine.fileio.backends.local_backend:LocalBackend.put',
    'mmengine.fileio.backends.local_backend:LocalBackend.put_text',
    'mmengine.hooks.checkpoint_hook:open',
    'mmengine.runner.runner:_load_checkpoint_to_model',
    'mmengine.runner.runner:Runner.load_checkpoint',
    'mmengine.runner.runner:Runner.save_checkpoint',
    'mmengine.logging.history_buffer:HistoryBuffer.__getstate__',
    'mmengine.dist.utils:_init_dist_pytorch',
    'mmengine.dist.utils:_init_dist_slurm',
    'mmengine.dist.utils:_init_dist_mpi',
    'mmengine.dist.utils:init_dist',
    'mmengine.model.wrappers.distributed:MMDistributedDataParallel.__init__',
    'mmdet.datasets.transforms.loading:LoadPanopticAnnotations._load_masks_and_semantic_segs',
    'torch.cuda:set_device',
]

SCRIPT = textwrap.dedent('''
    import builtins
    import importlib
    import inspect
    import json
    import sys
    import types

    modules = [importlib.import_module(name) for name in json.loads(sys.argv[1])]
    must = json.loads(sys.argv[2])

    def snapshot():
        """{'module:attr' or 'module:Class.attr': object} for the watched modules."""
        found = {}
        for module in modules:
            for name, value in list(vars(module).items()):
                found[f'{module.__name__}:{name}'] = value
                if inspect.isclass(value) and value.__module__ == module.__name__:
                    for attr, member in list(vars(value).items()):
                        found[f'{module.__name__}:{name}.{attr}'] = member
        # a name the module resolves through builtins (the checkpoint hook's `open`)
        for key in must:
            module_name, attr = key.split(':')
            if '.' not in attr and key not in found:
                found[key] = getattr(builtins, attr)
        return found

    before = snapshot()
    import mmibs  # noqa: F401
    import mmibs.engine, mmibs.datasets, mmibs.models  # noqa: F401,E401
    after = snapshot()

    changed = sorted(k for k, v in before.items() if k not in after or after[k] is not v)
    added = sorted(k for k, v in after.items()
                   if k not in before and not isinstance(v, types.ModuleType))
    print(json.dumps(dict(changed=changed, added=added, watched=sorted(before))))
''')


def test_import_mmibs_replaces_nothing():
    proc = subprocess.run(
        [sys.executable, '-c', SCRIPT,
         json.dumps(WATCHED_MODULES),
         json.dumps(MUST_BE_WATCHED)],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-5000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    missing = [key for key in MUST_BE_WATCHED if key not in result['watched']]
    assert not missing, f'not recorded (renamed in this mmengine/mmdet?): {missing}'
    assert result['changed'] == [], f'import mmibs replaced or removed: {result["changed"]}'
    assert result['added'] == [], f'import mmibs added: {result["added"]}'
