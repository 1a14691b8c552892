# Copyright (c) mmibs contributors. All rights reserved.
"""tools/analysis_tools/crop_sampling_scales.py on a tiny converted synthetic Cityscapes: the
numbers it prints follow from the released resize formula (the quarter-scale demo config and its
x4 comparison give the same clamping shares, since every size scales with the image)."""
import os.path as osp
import re
import sys

from mmibs.testing import make_converted_cityscapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import crop_sampling_scales  # noqa: E402

CONFIG = osp.join(REPO, 'configs', 'demo',
                  'panoptic-fcn_r18-tiny_1xb4-1.2k_synthetic-cityscapes-cropsamp-128x256-ibs.py')


def test_crop_sampling_scales_report(tmp_path, capsys):
    data = make_converted_cityscapes(str(tmp_path / 'cityscapes'), num_train=2, num_val=1,
                                     height=256, width=512)
    crop_sampling_scales.main([CONFIG, data['data_root'], '--compare-scale', '4', '--draws',
                               '200'])
    out = capsys.readouterr().out
    assert 'pairs centred on a thing category' in out
    clamps = re.findall(r'raised by side_min\s+([\d.]+)%', out)
    assert len(clamps) == 10  # five scales, config and x4
    assert clamps[:5] == clamps[5:]
    # the smallest target scale (8 px) is below every synthetic thing at side_min's 0.5 floor
    assert float(clamps[0]) == 100.0
    # both crops from one image: independent draws hit it about 1/images-per-category of the
    # time (2 training images here: about half); distinct_images never does when there is a choice
    same, expected = map(float, re.search(
        r'one image \(distinct_images=False\): ([\d.]+)%.*= ([\d.]+)%\)', out).groups())
    assert 0.0 < same and abs(same - expected) < 15.0


def test_distinct_images_removes_same_image_pairs(tmp_path, capsys):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmibs.registry import DATASETS
    data = make_converted_cityscapes(str(tmp_path / 'cityscapes'), num_train=3, num_val=1,
                                     height=128, width=256)
    init_default_scope('mmdet')
    dcfg = Config.fromfile(CONFIG).train_dataloader.dataset
    dcfg.dataset.data_root = data['data_root']
    dcfg.pipeline = []
    dcfg.distinct_images = True
    ds = DATASETS.build(dcfg)
    ds.full_init()
    single = [label for label in ds.labels if len(ds.images_per_label[label]) == 1]
    drawn = [k for k, label in enumerate(ds.labels) if label not in single] * 20
    crop_sampling_scales.report_same_image(ds, drawn)
    out = capsys.readouterr().out
    assert re.search(r'one image \(distinct_images=True\): 0\.0% \(the same segment: 0\.0%', out)
