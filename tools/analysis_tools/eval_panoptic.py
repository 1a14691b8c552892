# Copyright (c) mmibs contributors. All rights reserved.
"""Evaluate saved panoptic predictions: PQ/SQ/RQ, thing pixel accuracy / precision and mIoU.

Inputs are COCO-panoptic files as ``cityscapesscripts``' ``csEvalPanopticSemanticLabeling`` and
panopticapi's ``pq_compute`` read them (e.g. the ``<prefix>.panoptic.json`` and
``<prefix>.panoptic/`` that ``PanopticQualityMetric(outfile_prefix=...)`` writes); images are
matched by ``image_id`` (ints or Cityscapes' string ids), categories and thing flags come from the
ground-truth json. PQ/SQ/RQ equal those evaluators'; Acc_th / Prec_th are defined in
``docs/metrics.md``. All cores work by default (threads); PNGs are decoded with imgread when it is
installed, else OpenCV (``--decoder``; the numbers are the same).

Examples::

    python tools/analysis_tools/eval_panoptic.py \\
        data/cityscapes/annotations/cityscapes_panoptic_val.json \\
        data/cityscapes/annotations/cityscapes_panoptic_val \\
        work_dirs/m2f/results.panoptic.json work_dirs/m2f/results.panoptic
    # the other reading of Acc_th / Prec_th, per-class tables, results saved as json
    python tools/analysis_tools/eval_panoptic.py GT_JSON GT_DIR PRED_JSON PRED_DIR \\
        --matching max_overlap --classwise --out results.json
"""
import argparse
import json
import os
from typing import Optional, Sequence

import cv2

from mmibs.evaluation.functional import (MATCHING_MODES, PNG_DECODERS, evaluate_panoptic,
                                         panoptic_result_tables)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Panoptic evaluation of saved predictions (PQ, SQ, RQ, Acc_th, Prec_th, mIoU)')
    parser.add_argument('gt_json', help='ground-truth COCO-panoptic json')
    parser.add_argument('gt_dir', help='folder of the ground-truth PNGs')
    parser.add_argument('pred_json', help='predicted COCO-panoptic json')
    parser.add_argument('pred_dir', help='folder of the predicted PNGs')
    parser.add_argument(
        '--matching',
        choices=MATCHING_MODES,
        default='pq',
        help='pairing of Acc_th / Prec_th: the PQ matching (IoU > 0.5) or, for each segment, '
        'the same-class segment it overlaps most')
    parser.add_argument(
        '--nproc', type=int, default=None, help='worker threads (default: all cores)')
    parser.add_argument(
        '--decoder',
        choices=PNG_DECODERS,
        default='auto',
        help='PNG decoder: imgread (fast, if installed) or cv2; the results are the same')
    parser.add_argument('--classwise', action='store_true', help='also print per-class results')
    parser.add_argument('--out', help='save the results as json')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    # the worker threads are the parallelism: OpenCV's own pool would only oversubscribe the cores
    cv2.setNumThreads(1)
    results = evaluate_panoptic(
        args.gt_json,
        args.gt_dir,
        args.pred_json,
        args.pred_dir,
        matching=args.matching,
        nproc=args.nproc,
        classwise=args.classwise,
        show_progress=not args.no_progress,
        decoder=args.decoder)
    print(f'{results["num_images"]} images, matching={args.matching}, '
          f'{results["time"]:.2f} s')
    print('\n'.join(panoptic_result_tables(results)))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'results saved to {args.out}')
    return results


if __name__ == '__main__':
    main()
