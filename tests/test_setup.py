# Copyright (c) mmibs contributors. All rights reserved.
"""setup.py's ``install_requires`` brings every package mmibs loads at run time.

A fresh interpreter in which every installed package that ``install_requires`` (with what those
distributions require in turn) and torch (the user's own install) do not bring cannot be imported,
as in a clean venv, imports mmibs and all of its modules, builds the model, the data pipelines, the
evaluator and the visualizer of the training configs (one per network and dataset), and imports
the training, test, conversion and analysis tools. It must succeed: a package used at run time but
installed here only for the tests (mmsegmentation, panopticapi) fails this test, while optional
imports with a fallback (mmdet's of panopticapi, mmibs' of imgread) are free to fail.
"""
import ast
import json
import os.path as osp
import re
import subprocess
import sys
import textwrap
from importlib import metadata

from packaging.requirements import Requirement

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: One training config per network x dataset x task; the rest only change numbers of these.
CONFIGS = [
    'configs/panoptic_fcn/panoptic-fcn_r50_8xb4-65k_cityscapes-cropsamp-512x1024-ibs.py',
    'configs/panoptic_fcn/panoptic-fcn_r50_8xb4-150k_mapillary-cropsamp-1024x1024-ibs.py',
    'configs/panoptic_fcn/panoptic-fcn_r50_2xb2-100k_cityscapes-full-1024x2048-ibs.py',
    'configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-cropsamp-512x1024-ibs.py',
    'configs/mask2former/mask2former_r50_8xb2-300k_mapillary-instance-crop-1024x1024-ibs.py',
]
TOOLS = [
    'tools/train.py', 'tools/test.py', 'tools/dataset_converters/cityscapes_panoptic.py',
    'tools/dataset_converters/mapillary_vistas_panoptic.py',
    'tools/dataset_converters/crop_sampling_index.py',
    'tools/model_converters/panopticfcn_ibs_to_mmibs.py',
    'tools/model_converters/mask2former_ibs_to_mmibs.py', 'tools/analysis_tools/image_demo.py',
    'tools/analysis_tools/visualize_confusion.py', 'tools/analysis_tools/eval_panoptic.py'
]

LOAD_EVERYTHING = textwrap.dedent('''
    import importlib, importlib.util, json, os.path as osp, pkgutil, re, sys
    from importlib import metadata
    repo, configs, tools = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    allowed = set(json.loads(sys.argv[4]))
    # Read before anything is imported: setuptools later puts its vendored packages (with their
    # dist-info) on sys.path, and pkg_resources needs those copies.
    providers = metadata.packages_distributions()
    canonical = lambda name: re.sub(r'[-_.]+', '-', name).lower()
    hidden = sorted(module for module, dists in providers.items()
                    if module not in ('mmibs', 'tests') and module not in sys.stdlib_module_names
                    and not any(canonical(d) in allowed for d in dists))
    for name in hidden:  # as if not installed: `import name` raises ImportError
        sys.modules[name] = None
    import mmibs
    for info in pkgutil.walk_packages(mmibs.__path__, 'mmibs.'):
        if not info.name.startswith('mmibs.testing'):  # test scaffolding
            importlib.import_module(info.name)
    from mmengine.config import Config
    from mmdet.registry import MODELS, TRANSFORMS, METRICS, VISUALIZERS
    from mmdet.utils import register_all_modules
    register_all_modules()  # what the runner's default_scope='mmdet' does

    def pipelines(dataset):
        while 'dataset' in dataset:  # dataset wrappers
            yield from dataset.get('pipeline', [])
            dataset = dataset['dataset']
        yield from dataset.get('pipeline', [])

    for path in configs:
        cfg = Config.fromfile(osp.join(repo, path))
        MODELS.build(cfg.model)
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            for transform in pipelines(cfg[loader]['dataset']):
                TRANSFORMS.build(transform)
        evaluators = cfg.val_evaluator
        for metric in evaluators if isinstance(evaluators, list) else [evaluators]:
            METRICS.build({**metric, 'ann_file': None})  # no dataset here
        VISUALIZERS.build(cfg.visualizer)
    for i, path in enumerate(tools):
        spec = importlib.util.spec_from_file_location(f'_tool_{i}', osp.join(repo, path))
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    loaded = sorted({name.split('.')[0] for name, m in sys.modules.items() if m})
    print(json.dumps(dict(hidden=hidden, loaded=loaded, providers=providers)))
''')


def setup_literal(name):
    """The literal assigned to ``name`` at the top of setup.py (setup.py is not run)."""
    with open(osp.join(REPO, 'setup.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == name
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f'setup.py has no {name} literal')


def install_requires():
    return setup_literal('install_requires')


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def brought_by(requirements):
    """Canonical names of the installed distributions that ``requirements`` pull in, transitively.

    Markers are evaluated for this interpreter without extras; a requirement whose distribution
    is not installed here is skipped (it cannot explain a module that was loaded).
    """
    seen, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({'extra': ''}):
            continue
        name = canonical(req.name)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [Requirement(r) for r in dist.requires or []]
    return seen


def test_install_requires_lists_no_test_only_package():
    names = {canonical(Requirement(r).name) for r in install_requires()}
    assert {'mmcv', 'mmengine', 'mmdet', 'cityscapesscripts'} <= names
    # used by the tests only, or optional with a fallback (imgread -> OpenCV)
    assert not names & {'mmsegmentation', 'panopticapi', 'panopticapi-lite', 'imgread', 'pytest'}


def test_install_requires_covers_what_mmibs_loads():
    allowed = brought_by(install_requires() + ['torch'])
    out = subprocess.run([
        sys.executable, '-c', LOAD_EVERYTHING, REPO,
        json.dumps(CONFIGS), json.dumps(TOOLS), json.dumps(sorted(allowed))
    ], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, ('mmibs needs a package that setup.py install_requires does not '
                                 'bring:\n' + out.stderr[-3000:])
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert {'mmseg', 'panopticapi', 'imgread', 'pytest'} <= set(report['hidden'])  # test-only
    providers = report['providers']
    used = {}
    for module in report['loaded']:
        if module in sys.stdlib_module_names or module in ('mmibs', '__main__'):
            continue
        for dist in providers.get(module, []):
            used.setdefault(canonical(dist), []).append(module)
    assert {'mmdet', 'mmengine', 'mmcv', 'torch'} <= set(used)  # the check sees the stack
    missing = {dist: mods for dist, mods in used.items() if dist not in allowed}
    assert not missing, (f'loaded at run time but not brought by setup.py install_requires '
                         f'(distribution: modules): {missing}')
