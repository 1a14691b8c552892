# Copyright (c) mmibs contributors. All rights reserved.
"""tools/model_converters/panopticfcn_ibs_to_mmibs.py: formats, class order, metadata, refusals.

The release state dicts are built from the tensor names and shapes of the narrow release model of
the parity fixtures (``tests/data/parity/panoptic_fcn/spec.json``); the Vistas layout changes the
two output convs to 37 center / 29 region rows.
"""
import importlib.util
import json
import os.path as osp
import pickle
from functools import lru_cache

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'panopticfcn_ibs_to_mmibs.py')
SPEC = osp.join(REPO, 'tests', 'data', 'parity', 'panoptic_fcn', 'spec.json')


@lru_cache(maxsize=None)
def conv():
    spec = importlib.util.spec_from_file_location('panopticfcn_ibs_to_mmibs', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def release_state(vistas: bool = False) -> dict:
    """A release state dict (arange values, so that every row is distinguishable)."""
    with open(SPEC) as f:
        keys = json.load(f)['keys']
    out = {}
    for i, (key, shape) in enumerate(keys):
        shape = list(shape)
        if vistas and key.startswith('position_head.out_inst.'):
            shape[0] = 37
        if vistas and key.startswith('position_head.out_sem.'):
            shape[0] = 29
        n = int(np.prod(shape))
        out[key] = torch.arange(n, dtype=torch.float32).reshape(shape) + 1000 * i
    return out


def test_cityscapes_names_rows_and_metadata(tmp_path):
    """.pth with 'model' (+ optimiser state) -> mmibs names; region rows in label order
    (things first), center rows unchanged; num_batches_tracked added; the Cityscapes classes."""
    release = release_state()
    src, dst = tmp_path / 'model_final.pth', tmp_path / 'out' / 'mmibs.pth'
    torch.save(dict(model=release, iteration=65000, optimizer=dict(state={})), src)
    assert conv().main([str(src), str(dst)]) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    state, meta = ckpt['state_dict'], ckpt['meta']['dataset_meta']
    head = 'panoptic_head.head_module.position_head'
    perm = [11, 12, 13, 14, 15, 16, 17, 18, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert torch.equal(state[f'{head}.out_region.weight'],
                       release['position_head.out_sem.weight'][perm])
    assert torch.equal(state[f'{head}.out_region.bias'],
                       release['position_head.out_sem.bias'][perm])
    assert torch.equal(state[f'{head}.out_center.weight'], release['position_head.out_inst.weight'])
    assert torch.equal(state['backbone.conv1.weight'],
                       release['backbone.bottom_up.stem.conv1.weight'])
    assert torch.equal(state['backbone.layer1.0.downsample.1.running_var'],
                       release['backbone.bottom_up.res2.0.shortcut.norm.running_var'])
    assert torch.equal(state['neck.fpn_convs.5.conv.weight'],
                       release['backbone.top_block.p7.weight'])
    assert torch.equal(
        state['panoptic_head.head_module.feature_encoder.scale_heads.3.conv.2.gn.weight'],
        release['semantic_fpn.p5.4.norm.weight'])
    assert torch.equal(
        state[f'{head}.convs.layers.0.conv.conv_offset.weight'],
        release['position_head.position_head.position_head_head_1.offset_mask_conv.weight'])
    assert int(state['backbone.bn1.num_batches_tracked']) == 0
    assert sum(not k.endswith('num_batches_tracked') for k in state) == len(release)
    assert meta['classes'][:8] == ['person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
                                   'bicycle']
    assert len(meta['classes']) == 19 and meta['stuff_classes'][0] == 'road'
    assert ckpt['meta']['converted_from'] == 'model_final.pth'


def test_pkl_of_numpy_arrays_converts_like_the_pth(tmp_path):
    release = release_state()
    src = tmp_path / 'model_final.pkl'
    with open(src, 'wb') as f:
        pickle.dump(dict(model={k: v.numpy() for k, v in release.items()}, __author__='d2'), f)
    out = conv().convert(str(src), str(tmp_path / 'a.pth'))
    ref, _ = conv().convert_state_dict(release)
    assert list(out['state_dict']) == list(ref)
    assert all(torch.equal(out['state_dict'][k], ref[k]) for k in ref)


def test_vistas_layout_keeps_the_rows_and_names_65_classes(tmp_path):
    release = release_state(vistas=True)
    state, dataset = conv().convert_state_dict(release)
    assert dataset == 'mapillary'
    head = 'panoptic_head.head_module.position_head'
    assert torch.equal(state[f'{head}.out_region.weight'], release['position_head.out_sem.weight'])
    meta = conv().dataset_meta(dataset)
    assert (len(meta['thing_classes']), len(meta['stuff_classes'])) == (37, 28)
    with pytest.raises(ValueError, match='output shapes are those of mapillary'):
        conv().convert_state_dict(release, dataset='cityscapes')


@pytest.mark.parametrize('case, message', [
    ('mmengine', 'no "model" entry.*already an mmengine checkpoint'),
    ('not_dict', 'not a dict with "model"'),
    ('other_model', 'not a Panoptic FCN checkpoint: it lacks'),
    ('extra_tensor', "map to no mmibs tensor, e.g. \\['sem_seg_head.predictor.weight'\\]"),
    ('class_count', r'center / region output rows \(10, 19\) match no released model'),
    ('empty', '"model" is not a non-empty state dict'),
])
def test_refusals_name_the_problem_and_write_nothing(tmp_path, capsys, case, message):
    release = release_state()
    if case == 'mmengine':
        content = dict(state_dict=release, meta={})
    elif case == 'not_dict':
        content = [release]
    elif case == 'other_model':  # e.g. a Mask2Former checkpoint
        content = dict(model={'sem_seg_head.predictor.class_embed.weight': torch.zeros(20, 256)})
    elif case == 'extra_tensor':
        content = dict(model=dict(release, **{'sem_seg_head.predictor.weight': torch.zeros(3)}))
    elif case == 'class_count':
        release['position_head.out_inst.weight'] = torch.zeros(10, 32, 3, 3)
        content = dict(model=release)
    else:
        content = dict(model={})
    src, dst = tmp_path / 'bad.pth', tmp_path / 'dst.pth'
    torch.save(content, src)
    assert conv().main([str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and __import__('re').search(message, err), err
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_missing_source_and_unpicklable_pth(tmp_path, capsys):
    assert conv().main([str(tmp_path / 'nope.pth'), str(tmp_path / 'dst.pth')]) == 1
    assert 'no such file' in capsys.readouterr().err
    src = tmp_path / 'text.pth'
    src.write_text('not a checkpoint')
    assert conv().main([str(src), str(tmp_path / 'dst.pth')]) == 1
    assert 'torch.load(weights_only=True) failed' in capsys.readouterr().err
    assert not (tmp_path / 'dst.pth').exists()
