# Copyright (c) mmibs contributors. All rights reserved.
"""Run a model on an image or an image folder with mmdet's ``DetInferencer``.

Writes, under ``--out-dir``:

- ``vis/<image name>``: the prediction drawn by the config's visualizer (mmdet's
  ``DetLocalVisualizer``);
- with ``--save-pred``: ``preds/<stem>.json`` (mmdet's prediction dict; for panoptic models also
  ``segments_info``: ``id``, ``category_id`` (contiguous label), ``category`` (name), ``isthing``,
  ``area``) and ``preds/<stem>_panoptic_seg.png``, the panoptic map in COCO-panoptic RGB encoding
  (``id = label + inst * 1000``, void = 0), as mmdet's inferencer names them.

Example::

    python tools/analysis_tools/image_demo.py demo/images CONFIG --weights CKPT \\
        --out-dir work_dirs/demo --save-pred --device cpu
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar, mkdir_or_exist

import mmibs  # noqa: F401  (registers mmibs modules)
from mmdet.apis import DetInferencer
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmibs.visualization.inference import (apply_dataset_meta, dataset_meta_from_cfg,
                                           inference_pipeline, num_thing_classes)

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Image-folder inference with DetInferencer')
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('config', help='model config file')
    parser.add_argument('--weights', required=True, help='checkpoint file')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--device', default='cuda:0' if torch.cuda.is_available() else 'cpu',
        help='device for inference (default: cuda:0 if available, else cpu)')
    parser.add_argument('--pred-score-thr', type=float, default=0.3,
                        help='score threshold of drawn instances (default: 0.3)')
    parser.add_argument('--save-pred', action='store_true',
                        help='also write preds/<stem>.json and the panoptic PNG')
    parser.add_argument('--no-save-vis', action='store_true', help='do not write vis/ images')
    parser.add_argument(
        '--palette', default='none', choices=['coco', 'voc', 'citys', 'random', 'none'],
        help='colour palette; "none" takes the config dataset\'s palette (default)')
    parser.add_argument('--recursive', action='store_true', help='search sub-folders too')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, xxx=yyy format (see tools/test.py)')
    return parser.parse_args(argv)


def list_images(inputs: str, recursive: bool = False) -> List[str]:
    """Image files of a file or folder, sorted; a clear error when there are none."""
    if osp.isfile(inputs):
        return [inputs]
    if not osp.isdir(inputs):
        raise SystemExit(f'error: no such image file or folder: {inputs}')
    images = []
    for folder, _, files in os.walk(inputs):
        images += [osp.join(folder, f) for f in files if f.lower().endswith(IMG_EXTENSIONS)]
        if not recursive:
            break
    if not images:
        raise SystemExit(f'error: no images ({", ".join(IMG_EXTENSIONS)}) in {inputs}'
                         + ('' if recursive else ' (sub-folders are searched with --recursive)'))
    return sorted(images)


def check_readable(path: str) -> None:
    """Decode the image once, so that a broken file is named instead of failing deep inside."""
    try:
        img = mmcv.imread(path)
    except Exception as error:  # mmcv raises several types for undecodable files
        raise SystemExit(f'error: cannot read image {path}: {error}') from error
    if img is None or img.size == 0:
        raise SystemExit(f'error: cannot read image {path} (not an image or corrupt)')


def segments_info(pan_ids: np.ndarray, meta: dict) -> List[dict]:
    """COCO-panoptic style segments of a (H, W) id map; void (label == num classes) left out."""
    classes, num_things = meta['classes'], num_thing_classes(meta)
    ids, areas = np.unique(pan_ids, return_counts=True)
    segments = []
    for seg_id, area in zip(ids.tolist(), areas.tolist()):
        label = seg_id % INSTANCE_OFFSET
        if label == len(classes):
            continue
        isthing = seg_id >= INSTANCE_OFFSET if num_things is None else label < num_things
        segments.append(dict(id=seg_id, category_id=label, category=classes[label],
                             isthing=bool(isthing), area=area))
    return segments


def save_prediction(inferencer: DetInferencer, sample, path: str, out_dir: str,
                    meta: dict) -> None:
    """Write mmdet's prediction dict (+ segments_info) and the panoptic PNG of one image."""
    stem = osp.splitext(osp.basename(path))[0]
    pan_ids = None
    if 'pred_panoptic_seg' in sample:
        # A copy first: on the CPU, pred2dict writes VOID = 0 into the sample's own tensor.
        pan_ids = sample.pred_panoptic_seg.sem_seg.cpu().numpy()[0].astype(np.int64)
    result = inferencer.pred2dict(sample)  # no out dir: the dict only, written here
    if pan_ids is not None:
        png = osp.join(out_dir, 'preds', f'{stem}_panoptic_seg.png')
        mmcv.imwrite(result.pop('panoptic_seg')[..., ::-1], png)  # RGB id encoding
        result.update(panoptic_seg_path=png, segments_info=segments_info(pan_ids, meta))
    with open(osp.join(out_dir, 'preds', f'{stem}.json'), 'w') as f:
        json.dump(result, f)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    images = list_images(args.inputs, args.recursive)
    if not osp.isfile(args.config):
        raise SystemExit(f'error: no such config file: {args.config}')
    if not osp.isfile(args.weights):
        raise SystemExit(f'error: no such checkpoint file: {args.weights}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    # Images have no annotations: drop the test pipeline's annotation loaders.
    cfg.test_dataloader.dataset.pipeline = inference_pipeline(cfg.test_dataloader.dataset.pipeline)
    meta = dataset_meta_from_cfg(cfg, 'test')
    inferencer = DetInferencer(model=cfg, weights=args.weights, device=args.device,
                               palette=args.palette, show_progress=False)
    apply_dataset_meta(inferencer.model, meta, source=args.config)
    if args.palette != 'none':
        inferencer.model.dataset_meta['palette'] = args.palette
    inferencer.visualizer.dataset_meta = inferencer.model.dataset_meta

    mkdir_or_exist(osp.join(args.out_dir, 'preds' if args.save_pred else ''))
    progress = ProgressBar(len(images), file=sys.stdout)
    for path in images:
        check_readable(path)
        result = inferencer(path, out_dir=args.out_dir, no_save_vis=args.no_save_vis,
                            pred_score_thr=args.pred_score_thr, return_datasamples=True)
        if args.save_pred:
            save_prediction(inferencer, result['predictions'][0], path, args.out_dir, meta)
        progress.update()
    print()
    if not args.no_save_vis:
        print(f'{len(images)} visualised predictions in {osp.join(args.out_dir, "vis")}')
    if args.save_pred:
        print(f'{len(images)} predictions (json, panoptic PNG) in '
              f'{osp.join(args.out_dir, "preds")}')


if __name__ == '__main__':
    main()
