# Copyright (c) mmibs contributors. All rights reserved.
"""What crop sampling draws on a converted dataset, without loading an image.

Prints, for a crop-sampling config and a data root: the drawable categories and the share of
pairs centred on a thing category (categories are drawn uniformly); the distribution of the
things' sqrt(box area); for every target scale s of the config, how often ResizeToSegmentScale's
ratio s / sqrt(box area) is clamped by side_min (raised) or side_max / overall_max (lowered), and
the sqrt(area) the segment actually gets; the share of thing draws resized below 1.0; and the
share of pairs whose two crops come from one image (the IBS partner then holds the very instances
IBS pushes to empty; README.md of this project). With ``--compare-scale K`` the same is computed
for the images and all sizes multiplied by K (e.g. the demo's quarter-resolution scenes at
Cityscapes resolution with the released values: K=4).

Example::

    CONFIGS=projects/toy_cityscapes/configs
    python -m projects.toy_cityscapes.crop_sampling_scales \\
        $CONFIGS/panoptic-fcn_r18-tiny_1xb4-3k_synthetic-cityscapes-cropsamp-128x256-ibs.py \\
        demo_out/data/cityscapes/ --compare-scale 4
"""
import argparse
import math

import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmibs.datasets.transforms.crop_sampling import segment_scale_ratio


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='a crop-sampling training config')
    parser.add_argument('data_root', help='converted data root (train split is read)')
    parser.add_argument('--compare-scale', type=float, default=None,
                        help='also evaluate at images and sizes multiplied by this factor')
    parser.add_argument('--draws', type=int, default=2000, help='category draws to simulate')
    return parser.parse_args(argv)


def resize_cfg(cfg: Config) -> dict:
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'ResizeToSegmentScale':
            return t
    raise SystemExit(f'{cfg.filename}: no ResizeToSegmentScale in '
                     'train_dataloader.dataset.pipeline (not a crop-sampling config?)')


def report_scales(sizes, shapes, scales, side_min, side_max, overall_max, title):
    """Clamping and achieved sqrt(area) per target scale; returns the ratios (scales x things)."""
    print(title)
    all_ratios = []
    for s in scales:
        raw = np.array([s / max(b, 1.0) for b in sizes])
        ratios = np.array([
            segment_scale_ratio(b, b, h, w, s, side_min, side_max, overall_max)
            for b, (h, w) in zip(sizes, shapes)
        ])
        got = sizes * ratios
        print(f'  s={s:6.0f}: raised by side_min {100 * np.mean(ratios > raw * (1 + 1e-9)):5.1f}%'
              f', lowered by side_max/overall_max {100 * np.mean(ratios < raw * (1 - 1e-9)):5.1f}%'
              f', achieved sqrt(area) median {np.median(got):7.1f} px')
        all_ratios.append(ratios)
    ratios = np.concatenate(all_ratios)
    floor = side_min / np.array([min(h, w) for h, w in shapes] * len(scales))
    print(f'  thing draws: resize ratio median {np.median(ratios):.2f}, at the side_min floor '
          f'{100 * np.mean(ratios <= floor * (1 + 1e-9)):.1f}%, below 1.0 '
          f'{100 * np.mean(ratios < 1):.1f}%')


def report_same_image(ds, drawn) -> None:
    """Share of pairs drawn from one image, by the dataset's own draw (no image is loaded)."""
    np.random.seed(0)  # the dataset draws with np.random
    same = same_segment = 0
    for i in drawn:
        label = ds.labels[i]
        first = ds._draw_crop_info(label, 1.0)['crop_sampling']
        second = ds._draw_crop_info(label, 1.0)['crop_sampling']
        one_image = first['data_idx'] == second['data_idx']
        same += one_image
        same_segment += one_image and first['segment_id'] == second['segment_id']
    expected = np.mean([1 / len(ds.images_per_label[label]) for label in ds.labels])
    print(f'pairs with both crops from one image: '
          f'{100 * same / len(drawn):.1f}% (the same segment: {100 * same_segment / len(drawn):.1f}'
          f'%; independent draws give mean 1/images-per-category = {100 * expected:.1f}%)')


def main(argv=None):
    args = parse_args(argv)
    from mmibs.registry import DATASETS
    init_default_scope('mmdet')
    cfg = Config.fromfile(args.config)
    dcfg = cfg.train_dataloader.dataset
    r = resize_cfg(cfg)
    dcfg.dataset.data_root = args.data_root
    dcfg.pipeline = []
    ds = DATASETS.build(dcfg)
    ds.full_init()
    classes, num_things = ds.metainfo['classes'], len(ds.metainfo['thing_classes'])
    things = sum(label < num_things for label in ds.labels)
    rng = np.random.default_rng(0)
    drawn = rng.integers(len(ds.labels), size=args.draws)
    share = np.mean([ds.labels[i] < num_things for i in drawn])
    print(f'drawable categories ({things} things of {len(ds.labels)}): '
          f'{[classes[label] for label in ds.labels]}')
    print(f'pairs centred on a thing category: {100 * share:.1f}% of {args.draws} draws '
          f'(expected {100 * things / len(ds.labels):.1f}%)')
    report_same_image(ds, drawn)
    sizes, shapes = [], []
    for i in range(len(ds.dataset)):
        info = ds.dataset.get_data_info(i)
        for seg in info['segments_info']:
            if seg['category'] < num_things and not seg['iscrowd']:
                x1, y1, x2, y2 = seg['bbox']
                sizes.append(math.sqrt(max((x2 - x1) * (y2 - y1), 0.0)))
                shapes.append((info['height'], info['width']))
    sizes = np.array(sizes)
    print(f'{len(sizes)} non-crowd things, sqrt(box area) px: median {np.median(sizes):.0f}, '
          f'10-90% {np.percentile(sizes, 10):.0f}-{np.percentile(sizes, 90):.0f}, '
          f'min {sizes.min():.0f}, max {sizes.max():.0f}')
    scales = tuple(dcfg.scales)
    report_scales(sizes, shapes, scales, r['side_min'], r['side_max'], r['overall_max'],
                  f'config: scales {scales}, side_min {r["side_min"]}, side_max '
                  f'{r["side_max"]}, overall_max {r["overall_max"]}')
    if args.compare_scale:
        k = args.compare_scale
        report_scales(sizes * k, [(h * k, w * k) for h, w in shapes],
                      tuple(s * k for s in scales), r['side_min'] * k, r['side_max'] * k,
                      r['overall_max'] * k, f'x{k:g}: images, scales and limits multiplied')


if __name__ == '__main__':
    main()
