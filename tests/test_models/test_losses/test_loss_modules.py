# Copyright (c) mmibs contributors. All rights reserved.
"""The modules of ``mmibs.models.losses`` import without a cycle, each on its own.

Two checks: the graph of imports between the package's modules, read from the source (imports
inside functions too, which hide a cycle from a plain import), has no cycle; and every module
imports alone in a fresh interpreter whose parent packages are bare (their ``__init__`` does not
run), so the package ``__init__`` cannot pre-load a module and mask a cycle.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mmibs.models.losses as losses_pkg

PACKAGE = 'mmibs.models.losses'
PACKAGE_DIR = Path(losses_pkg.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob('*.py') if p.stem != '__init__')


def _sibling_imports(module: str) -> set:
    """The sibling modules that ``module`` imports anywhere in its source."""
    tree = ast.parse((PACKAGE_DIR / f'{module}.py').read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                name = node.module.split('.')[0]
            elif node.level == 0 and node.module and node.module.startswith(PACKAGE + '.'):
                name = node.module[len(PACKAGE) + 1:].split('.')[0]
            else:
                continue
            found.add(name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + '.'):
                    found.add(alias.name[len(PACKAGE) + 1:].split('.')[0])
    return found & set(MODULES)


def test_expected_modules_and_public_names():
    assert {'focal_to_zero', 'focal_to_zero_points', 'ibs_loss',
            'ibs_partner_choice'} <= set(MODULES)
    from mmibs.models.losses import IBSLoss, focal_loss_to_zero, ibs_loss, ibs_partners
    assert IBSLoss.__module__ == f'{PACKAGE}.ibs_loss'
    assert ibs_loss.__module__ == f'{PACKAGE}.ibs_loss'
    assert focal_loss_to_zero.__module__ == f'{PACKAGE}.focal_to_zero'
    assert ibs_partners.__module__ == f'{PACKAGE}.ibs_partner_choice'
    assert {'IBSLoss', 'focal_loss_to_zero', 'ibs_loss', 'ibs_partners'} <= set(losses_pkg.__all__)


def test_no_import_cycle_between_modules():
    graph = {m: _sibling_imports(m) for m in MODULES}
    assert graph['ibs_partner_choice'] == set()  # the leaf everything else builds on
    state = {}  # module -> 'open' while on the DFS stack, 'done' after

    def visit(module, path):
        state[module] = 'open'
        for dep in sorted(graph[module]):
            if state.get(dep) == 'open':
                pytest.fail(f'import cycle: {" -> ".join(path + [dep])}')
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 'done'

    for module in MODULES:
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize('module', MODULES)
def test_module_imports_alone(module):
    root = str(PACKAGE_DIR.parents[2])
    code = '\n'.join([
        'import importlib, os, sys, types',
        f'root = {root!r}',
        "for name in ('mmibs', 'mmibs.models', 'mmibs.models.losses'):",
        '    pkg = types.ModuleType(name)',
        "    pkg.__path__ = [os.path.join(root, *name.split('.'))]",
        '    sys.modules[name] = pkg',
        f"importlib.import_module('{PACKAGE}.{module}')",
        "loaded = sorted(m for m in sys.modules if m.startswith('mmibs.models.')",
        "                and m != 'mmibs.models.losses')",
        'print(loaded)',
    ])
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # it loaded itself and its sibling imports only, not the rest of mmibs.models
    loaded = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    assert f'{PACKAGE}.{module}' in loaded
    assert all(name.startswith(PACKAGE + '.') for name in loaded)
