# Copyright (c) mmibs contributors. All rights reserved.
"""tools/model_converters/mask2former_ibs_to_mmibs.py: complete mapping, class order, refusals.

The release checkpoints used here are the small parity model's (names and shapes from
tests/data/parity/mask2former/meta.json, weights from ``release_weights``), saved the way
detectron2 saves them (``{'model': state_dict, 'iteration': ...}``). The R50 refusals build the
released Cityscapes config's model (about 1 s).
"""
import importlib.util
import json
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch

import mask2former_parity_common as common

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURE = osp.join(REPO, 'tests', 'data', 'parity', 'mask2former')
SMALL_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                        'mask2former_r18-parity_release-small_cityscapes-64x128.py')
CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'mask2former_ibs_to_mmibs.py')


def load_converter():
    spec = importlib.util.spec_from_file_location('mask2former_ibs_to_mmibs', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conv = load_converter()


@pytest.fixture(scope='module')
def release_sd():
    with open(osp.join(FIXTURE, 'meta.json')) as f:
        meta = json.load(f)
    return common.release_weights(meta['release_shapes'], meta['weight_seed'],
                                  meta['weight_scales'])


def save_release(path, state_dict, **extra):
    torch.save(dict(model=state_dict, iteration=89999, **extra), path)
    return str(path)


def test_small_release_checkpoint_converts_completely(tmp_path, release_sd):
    src = save_release(tmp_path / 'model_final.pth', release_sd)
    dst = str(tmp_path / 'out' / 'mmibs.pth')
    meta = conv.convert(src, dst, config=SMALL_CONFIG)
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    # every release tensor but the criterion's no-object weight has exactly one mmibs name
    mapped = {k: conv.release_to_mmibs(k) for k in release_sd if k not in conv.DROPPED}
    assert None not in mapped.values()
    assert len(set(mapped.values())) == len(mapped)
    # the dropped buffer is only criterion.empty_weight; num_batches_tracked are kept as they are
    assert set(release_sd) - set(mapped) == {'criterion.empty_weight'}
    assert set(state) == set(mapped.values())
    for key, target in mapped.items():
        expected = release_sd[key]
        if key.startswith(conv.CLASS_HEAD):  # rows: release trainId order -> things first
            expected = expected[common.CLASS_PERM]
        assert torch.equal(state[target], expected), key
    # class row r of mmibs is the release row of the same class name
    assert meta['converted_from']['class_rows'] == common.CLASS_PERM
    assert ckpt['meta']['dataset_meta']['classes'][:2] == ['person', 'rider']
    assert ckpt['meta']['dataset_meta']['thing_classes'][-1] == 'bicycle'
    assert ckpt['meta']['converted_from']['iteration'] == 89999
    assert not list(tmp_path.joinpath('out').glob('.*.tmp'))  # atomic write left nothing


def test_class_permutation_cityscapes_and_vistas():
    from mmibs.registry import DATASETS
    cs = DATASETS.get('CityscapesPanopticDataset').METAINFO['classes']
    perm = conv.class_permutation(conv.CITYSCAPES_RELEASE_CLASSES, cs)
    assert perm == common.CLASS_PERM  # person (trainId 11) first ... sky (10), no object 19
    vistas = DATASETS.get('MapillaryVistasPanopticDataset').METAINFO
    perm = conv.class_permutation(conv.VISTAS_RELEASE_CLASSES, vistas['classes'])
    assert perm[0] == 0 and perm[-1] == 65  # Bird is thing 0 on both sides; no object last
    assert [conv.VISTAS_RELEASE_CLASSES[p] for p in perm[:-1]] == list(vistas['classes'])
    assert len(vistas['thing_classes']) == 37 and perm[37] == 2  # first stuff: Curb (id 3)
    instance = DATASETS.get('MapillaryVistasInstanceDataset').METAINFO['classes']
    assert conv.class_permutation(conv.VISTAS_RELEASE_THING_CLASSES,
                                  instance) == list(range(38))


def test_class_permutation_refuses_other_class_sets():
    with pytest.raises(conv.ConversionError, match='horse'):
        conv.class_permutation(conv.CITYSCAPES_RELEASE_CLASSES[:-1] + ('horse', ),
                               conv.CITYSCAPES_RELEASE_CLASSES)


def test_detect_dataset_from_class_rows(release_sd):
    assert conv.detect_dataset(release_sd) == 'cityscapes'
    sd = dict(release_sd)
    sd[conv.CLASS_HEAD + 'weight'] = torch.zeros(66, 32)
    assert conv.detect_dataset(sd) == 'mapillary'
    sd[conv.CLASS_HEAD + 'weight'] = torch.zeros(38, 32)
    assert conv.detect_dataset(sd) == 'mapillary-instance'
    sd[conv.CLASS_HEAD + 'weight'] = torch.zeros(81, 32)
    with pytest.raises(conv.ConversionError, match='81 rows'):
        conv.detect_dataset(sd)


def test_refuses_a_resnet18_checkpoint_for_the_released_r50_config(tmp_path, release_sd):
    src = save_release(tmp_path / 'r18.pth', release_sd)
    with pytest.raises(conv.ConversionError, match='ResNet-18; the config expects ResNet-50'):
        conv.convert(src, str(tmp_path / 'x.pth'))  # default: the released Cityscapes config
    assert not (tmp_path / 'x.pth').exists()


@pytest.mark.parametrize('edit, message', [
    ('drop_class_head', 'not a Mask2Former checkpoint'),
    ('swin', 'not a detectron2 ResNet'),
    ('extra', r'1 release tensors without an mmibs name \[sem_seg_head.extra.weight\]'),
    ('missing', r'1 mmibs tensors left empty \[panoptic_head.query_feat.weight\]'),
    ('shape', 'shape mismatches'),
    ('no_object_weight', 'criterion.empty_weight'),
])
def test_refuses_checkpoints_that_do_not_map_completely(tmp_path, release_sd, edit, message):
    sd = dict(release_sd)
    if edit == 'drop_class_head':
        del sd[conv.CLASS_HEAD + 'weight']
    elif edit == 'swin':
        sd = {k: v for k, v in sd.items() if not k.startswith('backbone.')}
        sd['backbone.layers.0.blocks.0.attn.qkv.weight'] = torch.zeros(3, 3)
    elif edit == 'extra':
        sd['sem_seg_head.extra.weight'] = torch.zeros(1)
    elif edit == 'missing':
        del sd['sem_seg_head.predictor.query_feat.weight']
    elif edit == 'shape':
        sd['sem_seg_head.predictor.query_embed.weight'] = torch.zeros(13, 32)
    elif edit == 'no_object_weight':
        sd['criterion.empty_weight'] = torch.ones(20)  # the config says 0.1 for no object
    src = save_release(tmp_path / 'bad.pth', sd)
    with pytest.raises(conv.ConversionError, match=message):
        conv.convert(src, str(tmp_path / 'out.pth'), config=SMALL_CONFIG)
    assert not (tmp_path / 'out.pth').exists()


def test_refuses_an_mmengine_checkpoint_and_unsafe_pickles_by_default(tmp_path, release_sd):
    mm = tmp_path / 'mm.pth'
    torch.save(dict(state_dict={}, meta={}), mm)
    with pytest.raises(conv.ConversionError, match='mmengine checkpoint already'):
        conv.convert(str(mm), str(tmp_path / 'out.pth'), config=SMALL_CONFIG)
    pkl = tmp_path / 'model_final.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(dict(model={k: v.numpy() for k, v in release_sd.items()}), f)
    with pytest.raises(conv.ConversionError, match='--unsafe-load'):
        conv.convert(str(pkl), str(tmp_path / 'out.pth'), config=SMALL_CONFIG)
    # detectron2's .pkl layout (numpy arrays) converts when the user vouches for the file
    conv.convert(str(pkl), str(tmp_path / 'out.pth'), config=SMALL_CONFIG, unsafe_load=True)
    assert (tmp_path / 'out.pth').exists()


def test_cli_reports_a_refusal_with_exit_status_1(tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save(dict(model={'backbone.stem.conv1.weight': torch.zeros(1)}), bad)
    proc = subprocess.run(
        [sys.executable, CONVERTER, str(bad), str(tmp_path / 'out.pth'), '--config',
         SMALL_CONFIG],
        cwd=REPO,
        capture_output=True,
        text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'not a Mask2Former checkpoint' in proc.stderr
    assert not (tmp_path / 'out.pth').exists()
