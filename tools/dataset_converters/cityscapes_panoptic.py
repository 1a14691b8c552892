# Copyright (c) mmibs contributors. All rights reserved.
"""Convert raw Cityscapes (leftImg8bit/, gtFine/) to the COCO-panoptic files mmibs reads.

Uses cityscapesscripts' own panoptic conversion (labelId category ids, string image ids, crowd and
ignoreInEval handling), then fixes what mmdet cannot read: image file names, category order.

Input (the official download, unzipped)::

    ROOT/leftImg8bit/{train,val}/<city>/<id>_leftImg8bit.png
    ROOT/gtFine/{train,val}/<city>/<id>_gtFine_instanceIds.png

Output (OUT_DIR defaults to ROOT/annotations)::

    OUT_DIR/cityscapes_panoptic_{train,val}.json
    OUT_DIR/cityscapes_panoptic_{train,val}/<id>_gtFine_panoptic.png

Example::

    python tools/dataset_converters/cityscapes_panoptic.py data/cityscapes

then ``crop_sampling_index.py`` on the train json writes the crop sampling index (docs/data.md).
"""
import argparse
import sys

from mmibs.datasets.converters import convert_cityscapes_panoptic


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='Cityscapes root holding leftImg8bit/ and gtFine/')
    parser.add_argument('--out-dir', default=None, help='output folder (default ROOT/annotations)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'], help='splits to convert')
    parser.add_argument('--quiet', action='store_true', help='no progress output')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    results = convert_cityscapes_panoptic(
        args.root, args.out_dir, splits=args.splits, show_progress=not args.quiet)
    for split, result in results.items():
        print(f'{split}: {result["num_images"]} images -> {result["ann_file"]}')
    return results


if __name__ == '__main__':
    main(sys.argv[1:])
