# Copyright (c) mmibs contributors. All rights reserved.
"""tools/analysis_tools/image_demo.py on a folder of images, with a tiny random-init Mask2Former."""
import importlib.util
import json
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

from projects.toy_cityscapes.synthetic import write_tiny_coco_panoptic

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'tests', 'data', 'configs',
                       'mask2former_r18-tiny_1xb2-4it_tiny-coco-panoptic.py')
# A random-init head scores every query below the 0.8 default: keep them all, so there is
# something to draw and save.
KEEP_ALL = ['model.test_cfg.object_mask_thr=0.0', 'model.test_cfg.iou_thr=0.0']


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'image_demo', osp.join(REPO, 'tools', 'analysis_tools', 'image_demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """Two 64 x 128 images, a config and a bare state-dict checkpoint (no dataset meta)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    root = tmp_path_factory.mktemp('tiny_demo')
    data = write_tiny_coco_panoptic(str(root / 'data') + '/', num_images=2, height=64, width=128)
    cfg_path = root / 'tiny.py'
    cfg_path.write_text(f"""
_base_ = [{BASE_CONFIG!r}]
data_root = {data['data_root']!r}
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
""")
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    ckpt = str(root / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return dict(data=data, cfg=str(cfg_path), ckpt=ckpt,
                images=osp.join(data['data_root'], 'images'))


def test_folder_inference_writes_vis_and_panoptic_predictions(tool, tiny, tmp_path, capsys):
    from panopticapi.utils import rgb2id

    out = tmp_path / 'out'
    tool.main([tiny['images'], tiny['cfg'], '--weights', tiny['ckpt'], '--out-dir', str(out),
               '--save-pred', '--device', 'cpu', '--cfg-options', *KEEP_ALL])
    assert str(out / 'vis') in capsys.readouterr().out
    classes = tiny['data']['metainfo']['classes']
    for stem in ('000000', '000001'):
        vis = mmcv.imread(str(out / 'vis' / f'{stem}.jpg'))
        assert vis is not None and vis.shape[:2] == (64, 128)
        pred = json.loads((out / 'preds' / f'{stem}.json').read_text())
        png = mmcv.imread(pred['panoptic_seg_path'], channel_order='rgb')
        assert png.shape[:2] == (64, 128)
        ids = rgb2id(png)
        # segments_info lists exactly the non-void ids of the PNG, with their pixel counts
        found, counts = np.unique(ids[ids != 0], return_counts=True)
        segments = sorted(pred['segments_info'], key=lambda s: s['id'])
        assert [s['id'] for s in segments] == found.tolist()
        assert [s['area'] for s in segments] == counts.tolist()
        assert len(segments) > 0
        for seg in segments:
            # labels are decoded against the config's 3 classes, not mmdet's 80 COCO classes
            assert seg['category_id'] == seg['id'] % 1000 < len(classes)
            assert seg['category'] == classes[seg['category_id']]
            assert seg['isthing'] == (seg['category_id'] < 2)
            assert seg['isthing'] == (seg['id'] >= 1000)


def test_empty_folder_and_broken_image(tool, tiny, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SystemExit, match='no images'):
        tool.main([str(empty), tiny['cfg'], '--weights', tiny['ckpt'], '--out-dir',
                   str(tmp_path / 'o')])
    (empty / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(SystemExit, match='cannot read image .*broken.png'):
        tool.main([str(empty), tiny['cfg'], '--weights', tiny['ckpt'], '--out-dir',
                   str(tmp_path / 'o'), '--device', 'cpu'])
