# Copyright (c) mmibs contributors. All rights reserved.
"""Write the crop sampling index (images per category) of a COCO-panoptic json.

For every category, the images with at least one non-crowd segment of it (things and stuff), as
the released IBS code's ``prepare_*_sampling.py`` (docs/data.md). Read by
``CropSamplingDataset(index_file=...)``, which can also compute it on the fly.

Example::

    python tools/dataset_converters/crop_sampling_index.py \\
        data/cityscapes/annotations/cityscapes_panoptic_train.json
    # -> data/cityscapes/annotations/cityscapes_panoptic_train_crop_sampling.json
"""
import argparse
import os.path as osp
import sys

from mmibs.datasets.converters import write_crop_sampling_index


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ann_file', help='COCO-panoptic json (a converter output)')
    parser.add_argument(
        '--out', default=None, help='output json (default <ann_file stem>_crop_sampling.json)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = args.out or osp.splitext(args.ann_file)[0] + '_crop_sampling.json'
    index = write_crop_sampling_index(args.ann_file, out)
    sizes = {c['name']: len(index['imgs_per_cat'][str(c['id'])]) for c in index['categories']}
    print(f'{len(index["cat_ids"])} categories -> {out}\nimages per category: {sizes}')
    return index


if __name__ == '__main__':
    main(sys.argv[1:])
