# Copyright (c) mmibs contributors. All rights reserved.
"""Check and prepare Mapillary Vistas panoptic annotations for mmibs.

Checks the version (v1.2: 65 categories with the v1.2 names and thing flags) and that every image
and panoptic PNG exists, then writes a things-first copy of the panoptic json and, with
--instances, a COCO instance-segmentation json (RLE masks of the thing segments).

Input (either release layout; SPLIT is training or validation)::

    ROOT/SPLIT/images/<key>.jpg
    ROOT/SPLIT/v1.2/panoptic/panoptic_2018.json + <key>.png   (v2.0 release; v2.0: panoptic_2020)
    ROOT/SPLIT/panoptic/panoptic_2018.json + <key>.png        (v1.2 release)

Output (OUT_DIR defaults to ROOT/annotations; S is train or val)::

    OUT_DIR/mapillary_vistas_<version>_panoptic_S.json
    OUT_DIR/mapillary_vistas_<version>_instances_S.json   (--instances)

Example::

    python tools/dataset_converters/mapillary_vistas_panoptic.py data/mapillary_vistas \\
        --instances --nproc 8
"""
import argparse
import sys

from mmibs.datasets.converters import convert_mapillary_vistas_panoptic


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='Mapillary Vistas root')
    parser.add_argument('--out-dir', default=None, help='output folder (default ROOT/annotations)')
    parser.add_argument('--version', default='v1.2', choices=['v1.2', 'v2.0'])
    parser.add_argument('--splits', nargs='+', default=['training', 'validation'])
    parser.add_argument(
        '--instances',
        action='store_true',
        help='also write a COCO instance json (RLE) of the thing segments')
    parser.add_argument('--nproc', type=int, default=1, help='processes for --instances')
    parser.add_argument('--quiet', action='store_true', help='no progress output')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    results = convert_mapillary_vistas_panoptic(
        args.root,
        args.out_dir,
        version=args.version,
        splits=args.splits,
        instances=args.instances,
        nproc=args.nproc,
        show_progress=not args.quiet)
    for split, result in results.items():
        print(f'{split}: {result["num_images"]} images -> {result["ann_file"]}')
    return results


if __name__ == '__main__':
    main(sys.argv[1:])
