# Copyright (c) mmibs contributors. All rights reserved.
"""Write a small synthetic dataset in the raw Cityscapes or Mapillary Vistas layout.

Street scenes with several large same-class instances side by side (cars, persons), stuff
regions, a crowd region and void pixels, with the datasets' real label ids; the converters run on
the output unchanged. A manifest of every drawn segment goes to OUT/synthetic_manifest.json.

Example (from the repository root)::

    python -m projects.toy_cityscapes.make_synthetic --layout cityscapes --out data/syn_cityscapes
    python tools/dataset_converters/cityscapes_panoptic.py data/syn_cityscapes
"""
import argparse
import sys

from .synthetic import make_synthetic_dataset

#: Integer options -> defaults (passed on to the generator under the same names).
SIZES = dict(num_train=8, num_val=2, height=1024, width=2048, seed=0)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--layout', choices=['cityscapes', 'vistas'], required=True)
    parser.add_argument('--out', required=True, help='dataset root to create')
    for name, default in SIZES.items():
        parser.add_argument(
            '--' + name.replace('_', '-'), type=int, default=default, help=f'default {default}')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    manifest = make_synthetic_dataset(
        args.layout, args.out, show_progress=True, **{name: getattr(args, name)
                                                      for name in SIZES})
    counts = {s: len(r) for s, r in manifest['splits'].items()}
    print(f'\n{args.layout} synthetic dataset in {args.out}: {counts} images')
    return manifest


if __name__ == '__main__':
    main(sys.argv[1:])
