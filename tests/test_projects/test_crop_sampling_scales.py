# Copyright (c) mmibs contributors. All rights reserved.
"""projects/toy_cityscapes/crop_sampling_scales.py on a tiny converted synthetic Cityscapes: the
numbers it prints follow from the released resize formula (the quarter-scale demo config and its
x4 comparison give the same clamping shares, since every size scales with the image)."""
import os.path as osp
import re

from projects.toy_cityscapes import crop_sampling_scales
from projects.toy_cityscapes.synthetic import make_converted_cityscapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'projects', 'toy_cityscapes', 'configs',
                  'panoptic-fcn_r18-tiny_1xb4-3k_synthetic-cityscapes-cropsamp-128x256-ibs.py')


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
    # time (2 training images here: about half)
    same, expected = map(float, re.search(
        r'one image: ([\d.]+)%.*= ([\d.]+)%\)', out).groups())
    assert 0.0 < same and abs(same - expected) < 15.0
