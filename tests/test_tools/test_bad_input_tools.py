# Copyright (c) mmibs contributors. All rights reserved.
"""tools/train.py and tools/test.py on bad input: a clear error naming the cause, no checkpoint
and no result written.

The tools run in subprocesses as a user runs them (~7 s each, mostly imports); the variants of
the config errors are checked in-process by building the model from the same config.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmibs  # noqa: F401
from mmibs.registry import MODELS
from mmibs.testing import tiny_panoptic_fcn_cfg
from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                       'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')


def _config(tmp_path, data_root: str, extra: str = '') -> str:
    """The tiny Mask2Former on ``data_root`` with mmibs' dataset, plus ``extra`` lines."""
    cfg = tmp_path / 'bad.py'
    cfg.write_text(f"""
_base_ = [{BASE_CONFIG!r}]
data_root = {data_root!r}
train_dataloader = dict(dataset=dict(type='ThingsFirstPanopticDataset', data_root=data_root))
val_dataloader = dict(dataset=dict(type='ThingsFirstPanopticDataset', data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic.json',
                      seg_prefix=data_root + 'annotations/panoptic/', backend_args=None)]
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1))
# the runner of mmibs' configs: it refuses a checkpoint of another architecture
runner_type = 'SafeCheckpointRunner'
{extra}
""")
    return str(cfg)


def _run_failing(cmd) -> str:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f'{cmd} should have failed:\n{out[-3000:]}'
    return out


def _written(work_dir: str) -> list:
    """Checkpoints, checkpoint pointers and result files under ``work_dir`` (logs excluded)."""
    found = []
    for root, _, files in os.walk(work_dir):
        found += [
            osp.join(root, f) for f in files
            if f.endswith(('.pth', '.json', '.pkl')) or f == 'last_checkpoint'
        ]
    return found


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_coco_panoptic(str(tmp_path / 'tiny') + '/', num_images=2)


@pytest.mark.parametrize(
    'extra, expected', [
        ("model = dict(panoptic_head=dict(type='Mask2FormerIBSHeed'))",
         'Mask2FormerIBSHeed is not in the mmdet::model registry'),
        ("model = dict(panoptic_head=dict(type='Mask2FormerIBSHead', loss_ibs=dict(type='IBSLoss', "
         "partnr='pair')))", "unexpected keyword argument 'partnr'"),
    ],
    ids=['unknown-type', 'misspelled-ibs-key'])
def test_train_refuses_a_bad_config(tmp_path, tiny, extra, expected):
    cfg = _config(tmp_path, tiny['data_root'], extra)
    work_dir = str(tmp_path / 'work')
    out = _run_failing([sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir])
    assert expected in out, out[-3000:]
    assert _written(work_dir) == []


@pytest.mark.parametrize('ibs_args, error, expected', [
    (dict(loss_ibs=dict(type='IBSLoss', partner='pairs')), ValueError,
     r"IBSLoss: partner must be one of \('pair', 'random', 'all'\), got 'pairs'"),
    (dict(loss_ibss=dict(type='IBSLoss')), TypeError,
     r"Mask2FormerIBSHead: unknown IBS argument\(s\) \['loss_ibss'\]"),
    (dict(ibs_skip_frist_layer=False), TypeError, r"\['ibs_skip_frist_layer'\]"),
])
def test_misspelled_ibs_settings_fail_at_build(ibs_args, error, expected):
    cfg = Config.fromfile(BASE_CONFIG)
    cfg.model.panoptic_head.update(type='Mask2FormerIBSHead', **ibs_args)
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(error, match=expected):
        MODELS.build(cfg.model)
    # Panoptic FCN's head has no **kwargs: Python names the key
    pfcn = tiny_panoptic_fcn_cfg(ibs=True)
    pfcn['panoptic_head']['loss_ibs']['partnr'] = pfcn['panoptic_head']['loss_ibs'].pop('partner')
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(TypeError, match='partnr'):
        MODELS.build(pfcn)


def test_train_stops_on_a_png_that_does_not_fit_the_json(tmp_path, tiny):
    ann = osp.join(tiny['data_root'], tiny['ann_file'])
    with open(ann) as f:
        data = json.load(f)
    for entry in data['annotations']:
        entry['segments_info'].pop()  # the person (id 4) stays in every PNG
    with open(ann, 'w') as f:
        json.dump(data, f)
    work_dir = str(tmp_path / 'work')
    out = _run_failing([
        sys.executable, 'tools/train.py',
        _config(tmp_path, tiny['data_root']), '--work-dir', work_dir
    ])
    assert 'segment id(s) [4] of the panoptic PNG are not segments of image' in out, out[-3000:]
    assert _written(work_dir) == []


def test_test_refuses_a_checkpoint_of_another_architecture(tmp_path, tiny):
    with DefaultScope.overwrite_default_scope('mmdet'):
        other = MODELS.build(tiny_panoptic_fcn_cfg(num_things_classes=2, num_stuff_classes=1))
    checkpoint = str(tmp_path / 'panoptic_fcn.pth')
    torch.save(dict(state_dict=other.state_dict(), meta=dict()), checkpoint)
    work_dir = str(tmp_path / 'work')
    out = _run_failing([
        sys.executable, 'tools/test.py',
        _config(tmp_path, tiny['data_root']), checkpoint, '--work-dir', work_dir
    ])
    assert f'{checkpoint}: does not fit the model Mask2Former' in out, out[-3000:]
    assert _written(work_dir) == []
