# Copyright (c) mmibs contributors. All rights reserved.
"""tools/analysis_tools/visualize_confusion.py end to end on a tiny random-init Mask2Former."""
import importlib.util
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import save_checkpoint

from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                       'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')
# A random-init head scores every query far below the 0.8 default: keep them all, so that the
# predictions hold segments to draw.
KEEP_ALL = ['model.test_cfg.object_mask_thr=0.0', 'model.test_cfg.iou_thr=0.0']


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', 'analysis_tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A 2-image 64 x 128 COCO-panoptic set, a config on it and two checkpoints of one model."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    root = tmp_path_factory.mktemp('tiny_confusion')
    data = write_tiny_coco_panoptic(str(root / 'data') + '/', num_images=2, height=64, width=128)
    cfg_path = root / 'tiny.py'
    cfg_path.write_text(f"""
_base_ = [{BASE_CONFIG!r}]
data_root = {data['data_root']!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
""")
    cfg = Config.fromfile(str(cfg_path))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    # a bare state dict: mmdet then falls back to the 80 COCO classes, which the tool must undo
    bare = str(root / 'bare.pth')
    torch.save({'state_dict': model.state_dict()}, bare)
    # an mmengine checkpoint with the dataset meta a training run stores
    with_meta = str(root / 'with_meta.pth')
    save_checkpoint({'state_dict': model.state_dict(),
                     'meta': {'dataset_meta': dict(data['metainfo'])}}, with_meta)
    return dict(data=data, cfg=str(cfg_path), ckpts=[bare, with_meta])


def gt_things(data):
    """Thing segments of the tiny set from its json: image stem -> areas, largest first."""
    with open(osp.join(data['data_root'], data['ann_file'])) as f:
        ann = json.load(f)
    things = {c['id'] for c in ann['categories'] if c['isthing']}
    names = {img['id']: osp.splitext(img['file_name'])[0] for img in ann['images']}
    return {names[a['image_id']]: sorted((s['area'] for s in a['segments_info']
                                          if s['category_id'] in things), reverse=True)
            for a in ann['annotations']}


def test_dataset_split_writes_both_figure_kinds(tiny, tmp_path, capsys):
    tool = load_tool('visualize_confusion')
    out = tmp_path / 'out'
    tool.main([tiny['cfg'], *tiny['ckpts'], '--names', 'baseline', 'ibs', '--dataset-split',
               'val', '--out-dir', str(out), '--max-instances', '2', '--device', 'cpu',
               '--cfg-options', *KEEP_ALL])
    printed = capsys.readouterr().out
    assert str(out / 'instances') in printed and str(out / 'panoptic') in printed

    areas = gt_things(tiny['data'])
    summary = json.loads((out / 'instances' / 'summary.json').read_text())
    assert len(summary) == 2 * 2
    for stem, expected in areas.items():
        records = [r for r in summary if r['image'] == stem]
        # the two largest GT things (the touching cars), largest first
        assert [r['area'] for r in records] == expected[:2]
        assert [r['rank'] for r in records] == [1, 2]
        for r in records:
            assert r['cls'] == 'car'
            fig = mmcv.imread(r['file'])
            assert r['file'] == str(out / 'instances' / f'{stem}_{r["rank"]}.png')
            assert fig.shape[1] == 3 * 450  # GT panel + one panel per model
            # same weights under both names: the same covering segment and numbers
            assert r['models']['baseline'] == r['models']['ibs']
            match = r['models']['baseline']
            if match['pred_id'] is not None:
                assert 0 < match['overlap'] <= r['area']
                assert match['recall'] == pytest.approx(match['overlap'] / r['area'])
                assert 0 < match['iou'] <= min(match['precision'], match['recall']) + 1e-9

    metainfo = tiny['data']['metainfo']
    for stem in areas:
        for name in ('baseline', 'ibs', 'gt'):
            fig = mmcv.imread(str(out / 'panoptic' / f'{stem}_{name}.png'), channel_order='rgb')
            assert fig is not None and fig.shape[1] == 1600
            assert len(np.unique(fig.reshape(-1, 3), axis=0)) > 50  # not a blank canvas
        # the GT figure paints the road (stuff, label 2) with its class colour blended at 0.6
        gt_fig = mmcv.imread(str(out / 'panoptic' / f'{stem}_gt.png'), channel_order='rgb')
        road = np.array(metainfo['palette'][2], np.float32)
        img = mmcv.imread(osp.join(tiny['data']['data_root'], 'images', stem + '.jpg'),
                          channel_order='rgb').astype(np.float32)
        alpha = np.float32(0.6)  # the blend of draw_panoptic, in float32
        corner = (img[:4, :4] * (1 - alpha) + road * alpha).astype(np.uint8).reshape(-1, 3)
        hits = [np.all(gt_fig == pixel, axis=-1).any() for pixel in corner]
        assert np.mean(hits) > 0.9


def test_images_only_writes_panoptic_figures(tiny, tmp_path):
    tool = load_tool('visualize_confusion')
    out = tmp_path / 'out'
    cfg = tiny['cfg']
    images = osp.join(tiny['data']['data_root'], 'images')
    tool.main([tiny['ckpts'][0], tiny['ckpts'][1], '--configs', cfg, cfg, '--images', images,
               '--out-dir', str(out), '--max-images', '1', '--cfg-options', *KEEP_ALL])
    assert sorted(p.name for p in (out / 'panoptic').iterdir()) == \
        ['000000_bare.png', '000000_with_meta.png']
    figs = [mmcv.imread(str(out / 'panoptic' / f'000000_{n}.png')) for n in ('bare', 'with_meta')]
    assert figs[0].shape[1] == 1600 and len(np.unique(figs[0].reshape(-1, 3), axis=0)) > 50
    # the same weights, with and without dataset meta in the checkpoint: the same picture below
    # the title (the top 0.4 inch, which names the model)
    np.testing.assert_array_equal(figs[0][40:], figs[1][40:])
    assert not (out / 'instances').exists()


def test_bad_arguments(tiny, tmp_path):
    tool = load_tool('visualize_confusion')
    with pytest.raises(SystemExit, match='2 checkpoints'):
        tool.main([tiny['cfg'], *tiny['ckpts'], '--names', 'one', '--images', '.',
                   '--out-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match='no such file'):
        tool.main([tiny['cfg'], 'missing.pth', '--images', '.', '--out-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match='no images'):
        tool.main([tiny['cfg'], tiny['ckpts'][0], '--images', str(tmp_path),
                   '--out-dir', str(tmp_path / 'o')])
