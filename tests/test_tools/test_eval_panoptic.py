# Copyright (c) mmibs contributors. All rights reserved.
"""tools/analysis_tools/eval_panoptic.py: table, saved json and the official evaluators' numbers."""
import contextlib
import copy
import importlib.util
import io
import json
import os.path as osp
import subprocess
import sys

import pytest
from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as cs_eval

from projects.toy_cityscapes.synthetic import write_panoptic_pairs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'eval_panoptic.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('eval_panoptic_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_results(paths):
    with open(paths['gt_json']) as f:
        gt = json.load(f)
    with open(paths['pred_json']) as f:
        preds = {ann['image_id']: ann for ann in json.load(f)['annotations']}
    pairs = [(copy.deepcopy(a), copy.deepcopy(preds[a['image_id']])) for a in gt['annotations']]
    categories = {cat['id']: cat for cat in gt['categories']}
    with contextlib.redirect_stdout(io.StringIO()):
        stats = cs_eval.pq_compute_single_core(0, pairs, paths['gt_folder'], paths['pred_folder'],
                                               categories)
    return cs_eval.average_pq(stats, categories)


def test_eval_panoptic_tool(tmp_path, capsys):
    paths = write_panoptic_pairs(str(tmp_path / 'data'), num_images=4, height=48, width=96, seed=2)
    out = str(tmp_path / 'res' / 'results.json')
    results = load_tool().main([
        paths['gt_json'], paths['gt_folder'], paths['pred_json'], paths['pred_folder'], '--nproc',
        '2', '--classwise', '--out', out
    ])
    printed = capsys.readouterr().out
    official = official_results(paths)
    for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        for key in ('pq', 'sq', 'rq'):
            assert results[key.upper() + suffix] == pytest.approx(
                100 * official[group][key], abs=1e-9)
        # the summary table shows PQ with 2 decimals
        assert f'{100 * official[group]["pq"]:.2f}' in printed
    for key in ('Acc_th', 'Prec_th', 'Acc_th_pix', 'Prec_th_pix', 'mIoU'):
        assert key in printed and 0 <= results[key] <= 100
    assert 'bicycle' in printed  # per-class table
    with open(out) as f:
        saved = json.load(f)
    assert saved['PQ'] == pytest.approx(results['PQ']) and saved['num_images'] == 4


def test_eval_panoptic_tool_command_line(tmp_path):
    """Run as a script (as a user would), with the alternative matching and OpenCV decoding."""
    paths = write_panoptic_pairs(str(tmp_path / 'data'), num_images=2, height=32, width=64, seed=4)
    done = subprocess.run([
        sys.executable, TOOL, paths['gt_json'], paths['gt_folder'], paths['pred_json'],
        paths['pred_folder'], '--matching', 'max_overlap', '--nproc', '1', '--no-progress',
        '--decoder', 'cv2'
    ],
                          capture_output=True,
                          text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert 'matching=max_overlap' in done.stdout and 'Prec_th' in done.stdout


def test_eval_panoptic_tool_missing_prediction(tmp_path):
    paths = write_panoptic_pairs(str(tmp_path / 'data'), num_images=2, height=16, width=32, seed=4)
    with open(paths['pred_json']) as f:
        pred = json.load(f)
    pred['annotations'] = pred['annotations'][:1]
    with open(paths['pred_json'], 'w') as f:
        json.dump(pred, f)
    with pytest.raises(KeyError, match="no prediction for image_id 'city_000001_000019'"):
        load_tool().main([
            paths['gt_json'], paths['gt_folder'], paths['pred_json'], paths['pred_folder'],
            '--nproc', '1'
        ])
