# Copyright (c) mmibs contributors. All rights reserved.
"""Draw the IBS paper's figures of mask confusion for one or more models.

Two figure kinds (``mmibs.visualization.confusion``):

1. ``<out-dir>/instances/<image>_<k>.png``: the k-th largest ground-truth thing instance of an
   image, then, for each model side by side, the predicted segment that covers it best, split into
   its part inside the instance and its spread outside it, with IoU, pixel precision and recall.
   Needs ground truth, so only with ``--dataset-split``. ``instances/summary.json`` lists the
   numbers of every figure.
2. ``<out-dir>/panoptic/<image>_<model>.png``: the full panoptic prediction of each model with a
   unique colour and a text label per segment (``<image>_gt.png``: the ground truth, with
   ``--dataset-split``).

Examples::

    # baseline and IBS checkpoints of one config, on the config's validation set
    python tools/analysis_tools/visualize_confusion.py CONFIG base.pth ibs.pth \\
        --names baseline ibs --dataset-split val --out-dir work_dirs/confusion --max-images 10
    # models with different configs, on a folder of images (panoptic figures only)
    python tools/analysis_tools/visualize_confusion.py base.pth ibs.pth \\
        --configs base_cfg.py ibs_cfg.py --names baseline ibs --images demo/ --out-dir out/
"""
import argparse
import copy
import json
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose
from mmengine.utils import ProgressBar, mkdir_or_exist

import mmibs  # noqa: F401  (registers mmibs modules)
from mmdet.apis import inference_detector, init_detector
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmibs.registry import DATASETS
from mmibs.utils.panoptic_ids import rgb2id
from mmibs.visualization.confusion import (best_covering_segment, draw_instance_comparison,
                                           draw_panoptic)
from mmibs.visualization.inference import (apply_dataset_meta, dataset_cfg_of,
                                           dataset_meta_from_cfg, inference_pipeline,
                                           num_thing_classes)

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Figures of mask confusion (IBS paper): per GT instance, the best covering '
        'predicted segment of each model; and each model\'s full panoptic prediction.')
    parser.add_argument(
        'paths', nargs='+', metavar='CONFIG CKPT [CKPT ...]',
        help='a config then one or more checkpoints; with --configs, checkpoints only')
    parser.add_argument(
        '--configs', nargs='+', help='one config per checkpoint, when the models differ')
    parser.add_argument(
        '--names', nargs='+', help='model names used in titles and file names '
        '(default: the checkpoint file names)')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--images', nargs='+', help='image files or folders (no ground truth)')
    source.add_argument(
        '--dataset-split', choices=['train', 'val', 'test'],
        help='images and ground truth of this dataloader\'s dataset in the (first) config')
    parser.add_argument('--out-dir', required=True, help='where the figures are written')
    parser.add_argument('--max-images', type=int, help='use only the first N images')
    parser.add_argument(
        '--max-instances', type=int, default=5,
        help='instance figures per image, largest GT instances first (default: 5)')
    parser.add_argument(
        '--min-area', type=int, default=0,
        help='skip GT instances smaller than this many pixels (default: 0)')
    parser.add_argument('--no-crop', action='store_true',
                        help='instance figures show the whole image, not a crop around it')
    parser.add_argument(
        '--device', default='cuda:0' if torch.cuda.is_available() else 'cpu',
        help='device for inference (default: cuda:0 if available, else cpu)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of every config, xxx=yyy format (see tools/test.py)')
    args = parser.parse_args(argv)
    if args.max_instances < 0 or args.min_area < 0:
        parser.error('--max-instances and --min-area must not be negative')
    return args


def resolve_models(args: argparse.Namespace) -> List[Tuple[str, str, str]]:
    """(name, config, checkpoint) per model, from the positional paths, --configs and --names."""
    if args.configs:
        configs, checkpoints = args.configs, args.paths
        if len(configs) != len(checkpoints):
            raise SystemExit(f'error: {len(configs)} --configs for {len(checkpoints)} checkpoints; '
                             'give one config per checkpoint')
    else:
        if len(args.paths) < 2:
            raise SystemExit('error: give a config and at least one checkpoint '
                             '(or --configs with one config per checkpoint)')
        configs, checkpoints = [args.paths[0]] * (len(args.paths) - 1), args.paths[1:]
    for path in [*configs, *checkpoints]:
        if not osp.isfile(path):
            raise SystemExit(f'error: no such file: {path}')
    names = args.names or [osp.splitext(osp.basename(c))[0] for c in checkpoints]
    if len(names) != len(checkpoints):
        raise SystemExit(f'error: {len(names)} --names for {len(checkpoints)} checkpoints')
    if len(set(names)) != len(names) or 'gt' in names:
        raise SystemExit(f'error: model names must be unique and not "gt", got {names} '
                         '(pass --names)')
    for name in names:
        if not re.fullmatch(r'[\w.+-]+', name):
            raise SystemExit(f'error: model name {name!r} must be usable in a file name')
    return list(zip(names, configs, checkpoints))


def list_images(paths: Sequence[str]) -> List[str]:
    """Image files from files and folders (sorted within a folder)."""
    images = []
    for path in paths:
        if osp.isdir(path):
            found = sorted(osp.join(path, f) for f in os.listdir(path)
                           if f.lower().endswith(IMG_EXTENSIONS))
            if not found:
                raise SystemExit(f'error: no images ({", ".join(IMG_EXTENSIONS)}) in {path}')
            images.extend(found)
        elif osp.isfile(path):
            images.append(path)
        else:
            raise SystemExit(f'error: no such image file or folder: {path}')
    return images


def gt_panoptic_ids(seg_map_path: str, segments_info: Sequence[dict],
                    void_label: int) -> Tuple[np.ndarray, List[dict]]:
    """Ground truth as a mmdet-style id map (label + inst * INSTANCE_OFFSET) plus its instances.

    Args:
        seg_map_path (str): COCO-panoptic RGB PNG.
        segments_info (Sequence[dict]): The dataset's ``segments_info`` (``id``, ``category``,
            ``is_thing``; mmdet marks crowd segments ``is_thing=False``).
        void_label (int): Label of pixels without a segment.

    Returns:
        tuple[np.ndarray, list[dict]]: (H, W) int64 id map; the non-crowd thing instances as dicts
        with ``id`` (in the returned map), ``label`` and ``area``.
    """
    png = mmcv.imread(seg_map_path, flag='color', channel_order='rgb')
    if png is None:
        raise SystemExit(f'error: cannot read the ground-truth PNG {seg_map_path}')
    seg_ids = rgb2id(png)
    pan_ids = np.full(seg_ids.shape, void_label, dtype=np.int64)
    instances = []
    for seg in segments_info:
        mask = seg_ids == seg['id']
        if seg['is_thing']:
            pan_id = seg['category'] + (len(instances) + 1) * INSTANCE_OFFSET
            instances.append(dict(id=pan_id, label=seg['category'], area=int(mask.sum())))
        else:
            pan_id = seg['category']
        pan_ids[mask] = pan_id
    return pan_ids, instances


def predict_panoptic(model, pipeline: Compose, img_path: str, shape: Tuple[int, int],
                     void_label: int) -> np.ndarray:
    """Run one model on one image; returns its (H, W) int64 panoptic id map."""
    result = inference_detector(model, img_path, test_pipeline=pipeline)
    if 'pred_panoptic_seg' not in result:
        raise SystemExit(f'error: the model {model.cfg.filename} gives no pred_panoptic_seg; this '
                         'tool needs a panoptic model')
    pan_ids = result.pred_panoptic_seg.sem_seg.cpu().numpy()[0].astype(np.int64)
    if pan_ids.shape != shape:
        raise SystemExit(f'error: prediction for {img_path} has shape {pan_ids.shape}, the image '
                         f'{shape}')
    labels = pan_ids % INSTANCE_OFFSET
    if labels.max() > void_label:
        raise SystemExit(f'error: the model predicts label {labels.max()} but the dataset has '
                         f'{void_label} classes (void = {void_label})')
    return pan_ids


def load_config(path: str, cfg_options: Optional[dict], cache: Dict[str, Config]) -> Config:
    """A copy of the config at ``path`` with the --cfg-options merged, parsed once per path
    (parsing an ``mmdet::`` base takes about a second)."""
    if path not in cache:
        cfg = Config.fromfile(path)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        cache[path] = cfg
    return copy.deepcopy(cache[path])


def load_models(models: Sequence[Tuple[str, str, str]], cfg_options: Optional[dict],
                device: str, meta: dict, cache: Dict[str, Config]) -> Dict[str, tuple]:
    """name -> (model, annotation-free test pipeline)."""
    loaded = {}
    for name, config, checkpoint in models:
        cfg = load_config(config, cfg_options, cache)
        model = init_detector(cfg, checkpoint, device=device)
        apply_dataset_meta(model, meta, source=config)
        pipeline = Compose(inference_pipeline(cfg.test_dataloader.dataset.pipeline))
        loaded[name] = (model, pipeline)
    return loaded


def image_items(args: argparse.Namespace, cfg: Config) -> List[dict]:
    """One dict per image: ``img_path`` and, with a dataset split, ``seg_map_path`` and
    ``segments_info``."""
    if args.images:
        items = [dict(img_path=p) for p in list_images(args.images)]
    else:
        dataset = DATASETS.build(dataset_cfg_of(cfg, args.dataset_split))
        num = len(dataset) if args.max_images is None else min(len(dataset), args.max_images)
        items = [dataset.get_data_info(i) for i in range(num)]
        for item in items:
            if not item.get('seg_map_path') or 'segments_info' not in item:
                raise SystemExit(f'error: the {args.dataset_split} dataset gives no panoptic '
                                 '(seg_map_path, segments_info) ground truth for '
                                 f'{item["img_path"]}')
    if not items:
        raise SystemExit('error: no images to draw')
    return items[:args.max_images] if args.max_images is not None else items


def unique_stems(paths: Sequence[str]) -> List[str]:
    """File-name stems, made unique with a numeric suffix where two images share one."""
    stems, seen = [], {}
    for path in paths:
        stem = osp.splitext(osp.basename(path))[0]
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f'{stem}_{seen[stem]}')
    return stems


def instance_figures(img, stem, gt_ids, instances, preds, meta, args, out_dir) -> List[dict]:
    """Write the instance figures of one image; returns one summary record per figure."""
    classes, void_label = meta['classes'], len(meta['classes'])
    ranked = sorted((i for i in instances if i['area'] >= args.min_area and i['area'] > 0),
                    key=lambda i: -i['area'])[:args.max_instances]
    records = []
    for rank, inst in enumerate(ranked, start=1):
        gt_mask = gt_ids == inst['id']
        context = [gt_ids == other['id'] for other in instances
                   if other['label'] == inst['label'] and other['id'] != inst['id']]
        name = classes[inst['label']]
        figure = draw_instance_comparison(
            img, gt_mask, preds, classes=classes, gt_label=inst['label'], void_label=void_label,
            context_masks=context, crop=not args.no_crop,
            title=f'{stem}: {name}, the #{rank} largest GT instance')
        path = osp.join(out_dir, 'instances', f'{stem}_{rank}.png')
        mmcv.imwrite(figure[..., ::-1], path)
        matches = {model: best_covering_segment(gt_mask, pred, void_label)._asdict()
                   for model, pred in preds.items()}
        records.append(dict(image=stem, rank=rank, file=path, label=inst['label'], cls=name,
                            area=inst['area'], models=matches))
    return records


def print_summary(records: Sequence[dict], names: Sequence[str]) -> None:
    """Mean IoU / precision / recall of each model's best covering segments over the figures."""
    if not records:
        return
    print(f'\nbest covering segment of {len(records)} GT instances (mean over instances):')
    print(f'{"model":<20} {"IoU":>6} {"prec":>6} {"recall":>6}')
    for name in names:
        values = np.array([[r['models'][name][k] for k in ('iou', 'precision', 'recall')]
                           for r in records])
        print(f'{name:<20} ' + ' '.join(f'{v:6.3f}' for v in values.mean(0)))


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    models = resolve_models(args)
    configs: Dict[str, Config] = {}
    first_cfg = load_config(models[0][1], args.cfg_options, configs)
    split = args.dataset_split or 'test'
    meta = dataset_meta_from_cfg(first_cfg, split)
    classes, void_label = meta['classes'], len(meta['classes'])
    items = image_items(args, first_cfg)
    loaded = load_models(models, args.cfg_options, args.device, meta, configs)
    for sub in ('panoptic', 'instances') if args.dataset_split else ('panoptic', ):
        mkdir_or_exist(osp.join(args.out_dir, sub))

    records, num_panoptic = [], 0
    stems = unique_stems([item['img_path'] for item in items])
    progress = ProgressBar(len(items), file=sys.stdout)
    for item, stem in zip(items, stems):
        img = mmcv.imread(item['img_path'], channel_order='rgb')
        if img is None:
            raise SystemExit(f'error: cannot read image {item["img_path"]}')
        preds = {name: predict_panoptic(model, pipeline, item['img_path'], img.shape[:2],
                                        void_label)
                 for name, (model, pipeline) in loaded.items()}
        maps = dict(preds)
        if args.dataset_split:
            gt_ids, instances = gt_panoptic_ids(item['seg_map_path'], item['segments_info'],
                                                void_label)
            if gt_ids.shape != img.shape[:2]:
                raise SystemExit(f'error: ground truth {item["seg_map_path"]} has shape '
                                 f'{gt_ids.shape}, the image {img.shape[:2]}')
            maps['gt'] = gt_ids
            records += instance_figures(img, stem, gt_ids, instances, preds, meta, args,
                                        args.out_dir)
        for name, pan_ids in maps.items():
            figure = draw_panoptic(img, pan_ids, classes, meta['palette'],
                                   num_things=num_thing_classes(meta),
                                   title=f'{stem}: {"ground truth" if name == "gt" else name}')
            mmcv.imwrite(figure[..., ::-1],
                         osp.join(args.out_dir, 'panoptic', f'{stem}_{name}.png'))
            num_panoptic += 1
        progress.update()

    print(f'\n{num_panoptic} panoptic figures in {osp.join(args.out_dir, "panoptic")}')
    if args.dataset_split:
        summary = osp.join(args.out_dir, 'instances', 'summary.json')
        with open(summary, 'w') as f:
            json.dump(records, f, indent=1)
        print(f'{len(records)} instance figures in {osp.join(args.out_dir, "instances")} '
              f'(numbers in {summary})')
        print_summary(records, [name for name, _, _ in models])


if __name__ == '__main__':
    main()
