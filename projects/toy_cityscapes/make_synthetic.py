# Copyright (c) mmibs contributors. All rights reserved.
"""Write a small synthetic dataset in the raw Cityscapes or Mapillary Vistas layout.

Street scenes with several large same-class instances side by side (cars, persons), stuff
regions, a crowd region and void pixels, with the datasets' real label ids; the converters run on
the output unchanged. A manifest of every drawn segment goes to OUT/synthetic_manifest.json.

Example::

    python tools/dataset_converters/make_synthetic.py --layout cityscapes --out data/syn_cityscapes
    python tools/dataset_converters/cityscapes_panoptic.py data/syn_cityscapes
"""
import argparse
import sys

from mmibs.datasets.synthetic import make_synthetic_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--layout', choices=['cityscapes', 'vistas'], required=True)
    parser.add_argument('--out', required=True, help='dataset root to create')
    parser.add_argument('--num-train', type=int, default=8)
    parser.add_argument('--num-val', type=int, default=2)
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    manifest = make_synthetic_dataset(
        args.layout,
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        height=args.height,
        width=args.width,
        seed=args.seed,
        show_progress=True)
    counts = {s: len(r) for s, r in manifest['splits'].items()}
    print(f'\n{args.layout} synthetic dataset in {args.out}: {counts} images')
    return manifest


if __name__ == '__main__':
    main(sys.argv[1:])
