# Copyright (c) mmibs contributors. All rights reserved.
"""Registered panoptic metric: PQ/SQ/RQ, thing pixel accuracy / precision and semantic mIoU.

The plumbing around :mod:`mmibs.evaluation.functional` (the maths). Unlike mmdet's
``CocoPanopticMetric`` it computes each image's statistics in ``process`` straight from the
prediction tensor (no temporary PNG round trip), finds the ground-truth PNG through the json's
``annotations[].file_name`` (not from the image name) and maps labels to json category ids by class
name (not by json order, which mmdet 3.3's ``CocoPanopticMetric`` gets wrong on stuff-first jsons
such as Cityscapes': it maps labels through ``get_cat_ids``, which returns json order). The ground
truth of an image is decoded once per run: it is kept between evaluations in run-length form (a
bounded cache), so in-training validation pays the PNG decoding only at its first evaluation.
"""
import logging
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.evaluator import BaseMetric
from mmengine.fileio import dump, load
from mmengine.logging import MMLogger, print_log

from mmibs.registry import METRICS
from mmibs.utils.checks import check_choice
from ..functional import (MATCHING_MODES, PANOPTIC_KEYS, IdRuns, PanopticStats, id2rgb,
                          panoptic_result_tables, panoptic_stats_single, png_decoder_available,
                          read_panoptic_runs, semantic_iou, summarize_panoptic_stats)


@METRICS.register_module()
class PanopticQualityMetric(BaseMetric):
    """PQ, SQ, RQ (all / things / stuff), Acc_th, Prec_th and mIoU of panoptic predictions.

    Acc_th / Prec_th are the thing pixel accuracy and precision defined in ``docs/metrics.md``
    (:mod:`mmibs.evaluation.functional.thing_pixel_stats`); mIoU is the mean IoU of the semantic
    part over the dataset classes (crowd counts as its class, VOID is ignored), the same numbers
    as mmseg's ``IoUMetric``. PQ equals panopticapi's and cityscapesscripts' evaluators.

    Each data sample needs ``pred_panoptic_seg['sem_seg']`` (1, H, W) with values
    ``label + inst_id * INSTANCE_OFFSET`` (label: index in ``dataset_meta['classes']``, mapped to
    the json category of the same name; VOID label = ``len(classes)``), ``img_id`` (int or str)
    and, without ``ann_file``, ``seg_map_path`` and ``segments_info`` (mmdet's dataset format).
    Predictions must be at the ground truth's size. Results are logged as ``panoptic/PQ`` etc.

    Args:
        ann_file (str, optional): COCO-panoptic ground-truth json; images are matched by
            ``annotations[].image_id``, categories and thing flags read from it. None takes the
            ground truth from the data samples. Defaults to None.
        seg_prefix (str, optional): Folder of the ground-truth PNGs named by
            ``annotations[].file_name``. Required with ``ann_file`` unless ``format_only``.
            Defaults to None.
        classwise (bool): Also log per-class PQ/SQ/RQ/Acc/Prec/IoU. Defaults to False.
        matching (str): Pairing of Acc_th / Prec_th, 'pq' or 'max_overlap'. Defaults to 'pq'.
        outfile_prefix (str, optional): Write ``<prefix>.panoptic.json`` and ``<prefix>.panoptic/``
            (RGB-id PNGs, json category ids, the dataset's image ids) in COCO/Cityscapes panoptic
            result format, which panopticapi's ``pq_compute`` and cityscapesscripts'
            ``evaluatePanoptic`` read. Defaults to None.
        format_only (bool): Only write the results (e.g. for a test server); ``ann_file`` then
            only needs ``categories``. Defaults to False.
        with_miou (bool): Add mIoU. Defaults to True.
        nproc (int): Threads that compute the images of one batch (the PNG decoding and numpy work
            release the GIL). Defaults to 1.
        gt_cache_bytes (int): Bytes of decoded ground truth kept for later evaluations, as
            :class:`~mmibs.evaluation.functional.IdRuns` (12 bytes per run: 0.13 MB for the
            synthetic 1024x2048 maps of benchmark_metric.py, ~10**4 runs; maps with finer
            structures have more runs, e.g. 0.5 MB at 4 * 10**4). Images are kept in
            the order first seen until the budget is full, then no more are added: a validation
            set larger than the budget still hits on the part that fits at every evaluation
            (an LRU would miss on every image of a cyclic scan). 0 turns the cache off.
            Defaults to 512 MiB.
        decoder (str): PNG decoder of the ground truth, 'auto', 'imgread' or 'cv2'
            (:mod:`mmibs.evaluation.functional.panoptic_png`; the same ids). Defaults to 'auto'.
        backend_args (dict, optional): mmengine file backend arguments for the json and the PNGs.
            Defaults to None.
        collect_device (str): 'cpu' or 'gpu', for gathering results across ranks.
            Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to None ('panoptic').
    """
    default_prefix: Optional[str] = 'panoptic'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 seg_prefix: Optional[str] = None,
                 classwise: bool = False,
                 matching: str = 'pq',
                 outfile_prefix: Optional[str] = None,
                 format_only: bool = False,
                 with_miou: bool = True,
                 nproc: int = 1,
                 gt_cache_bytes: int = 512 * 1024**2,
                 decoder: str = 'auto',
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_choice('PanopticQualityMetric', 'matching', matching, MATCHING_MODES)
        if format_only and outfile_prefix is None:
            raise ValueError('PanopticQualityMetric: format_only=True needs an outfile_prefix')
        if ann_file is not None and seg_prefix is None and not format_only:
            raise ValueError('PanopticQualityMetric: ann_file needs seg_prefix (the folder of the '
                             'ground-truth PNGs)')
        if nproc < 1:
            raise ValueError(f'PanopticQualityMetric: nproc must be >= 1, got {nproc}')
        if gt_cache_bytes < 0:
            raise ValueError('PanopticQualityMetric: gt_cache_bytes must be >= 0, got '
                             f'{gt_cache_bytes}')
        if not png_decoder_available(decoder):
            raise ImportError(f'PanopticQualityMetric: decoder={decoder!r} needs the imgread '
                              'package (pip install imgread), or use "auto" / "cv2"')
        self.ann_file = ann_file
        self.seg_prefix = seg_prefix
        self.classwise = classwise
        self.matching = matching
        self.outfile_prefix = outfile_prefix
        self.format_only = format_only
        self.with_miou = with_miou
        self.nproc = nproc
        self.gt_cache_bytes = gt_cache_bytes
        self.decoder = decoder
        self.backend_args = backend_args
        # path -> IdRuns of the ground truth; filled in process() (main thread only)
        self._gt_cache: Dict[str, IdRuns] = {}
        self._gt_cache_used = 0
        self._gt_cache_full_logged = False
        self.seg_out_dir = None if outfile_prefix is None else f'{outfile_prefix}.panoptic'

        self._gt_json = None if ann_file is None else load(ann_file, backend_args=backend_args)
        if self._gt_json is not None and 'categories' not in self._gt_json:
            raise KeyError(f'PanopticQualityMetric: {ann_file} has no "categories"')
        self._gt_anns = None
        if self._gt_json is not None and not format_only:
            self._gt_anns = {ann['image_id']: ann for ann in self._gt_json['annotations']}
        self._label_table = None  # (classes, (categories, label2cat)) of the last dataset_meta

    # --- label bookkeeping -------------------------------------------------------------------
    def _labels(self) -> Tuple[List[dict], np.ndarray]:
        """Evaluation categories and the json category id of every contiguous label.

        Returns:
            tuple: categories (json order, or label order without ``ann_file``) and ``label2cat``,
            int64 of shape (num_classes, ).
        """
        meta = self.dataset_meta or {}
        classes = list(meta.get('classes', ()))
        if not classes:
            raise ValueError('PanopticQualityMetric: dataset_meta["classes"] is not set')
        if self._label_table is not None and self._label_table[0] == classes:
            return self._label_table[1]
        if self._gt_json is None:
            things = set(meta.get('thing_classes', ()))
            categories = [
                dict(id=k, name=name, isthing=int(name in things)) for k, name in enumerate(classes)
            ]
            label2cat = np.arange(len(classes), dtype=np.int64)
        else:
            categories = self._gt_json['categories']
            by_name = {cat['name']: cat['id'] for cat in categories}
            missing = [name for name in classes if name not in by_name]
            if missing:
                raise ValueError(f'PanopticQualityMetric: classes {missing} of dataset_meta are '
                                 f'not categories of {self.ann_file} ({sorted(by_name)})')
            # By name, never by json order (pycocotools' get_cat_ids returns json order).
            label2cat = np.array([by_name[name] for name in classes], dtype=np.int64)
            extra = sorted(set(by_name) - set(classes))
            if extra:
                print_log(
                    f'PanopticQualityMetric: categories {extra} of {self.ann_file} are not '
                    'dataset classes; their ground truth only counts as missed in PQ',
                    logger='current',
                    level=logging.WARNING)
        self._label_table = (classes, (categories, label2cat))
        return categories, label2cat

    # --- per image -----------------------------------------------------------------------------
    def _prediction(self, data_sample: dict) -> Tuple[IdRuns, List[dict]]:
        """Prediction ids as runs (0 = VOID, else ``value + 1``) and its json ``segments_info``.

        The input tensor is only read (mmdet's metric writes VOID into it in place, which corrupts
        it for any later metric). The map is cut into runs of equal values once; the values, their
        areas and their ids are then worked out on the runs, not on every pixel.
        """
        _, label2cat = self._labels()
        num_classes = len(label2cat)
        pan = data_sample['pred_panoptic_seg']['sem_seg']
        pan = pan.detach().cpu().numpy() if isinstance(pan, torch.Tensor) else np.asarray(pan)
        pan = pan.reshape(pan.shape[-2:])  # shape (1, H, W) -> (H, W), a view
        image_id = data_sample.get('img_id')
        runs = IdRuns.from_map(pan)
        if not np.issubdtype(pan.dtype, np.integer) or (runs.values.size and runs.values.min() < 0):
            raise ValueError(f'PanopticQualityMetric: image {image_id!r}: pred_panoptic_seg must '
                             f'hold non-negative integers, got {pan.dtype}')
        values, inverse = np.unique(runs.values, return_inverse=True)  # shape (V, ), (R, )
        lengths = np.diff(runs.starts, append=pan.size)  # shape (R, )
        counts = np.rint(np.bincount(inverse, weights=lengths,
                                     minlength=len(values))).astype(np.int64)  # shape (V, )
        labels = values % INSTANCE_OFFSET
        if labels.size and labels.max() > num_classes:
            raise ValueError(f'PanopticQualityMetric: image {image_id!r} has labels up to '
                             f'{labels.max()}, but dataset_meta has {num_classes} classes')
        keep = labels != num_classes  # VOID: label num_classes, any instance
        # ids = value + 1, so that label 0 with instance 0 does not become 0 (VOID)
        new_ids = np.where(keep, values + 1, 0)
        segments = [
            dict(id=int(v) + 1, category_id=int(label2cat[label]), area=int(area))
            for v, label, area in zip(values[keep], labels[keep], counts[keep])
        ]
        return IdRuns(pan.shape, runs.starts, new_ids[inverse]), segments

    def _ground_truth(self, data_sample: dict) -> Tuple[str, List[dict]]:
        """Ground-truth PNG path and ``segments_info`` (json format) of one data sample."""
        image_id = data_sample['img_id']
        if self._gt_anns is not None:
            ann = self._gt_anns.get(image_id)
            if ann is None:
                raise KeyError(f'PanopticQualityMetric: image_id {image_id!r} is not in the '
                               f'annotations of {self.ann_file}')
            path = osp.join(self.seg_prefix, ann['file_name'])
            segments = ann['segments_info']
        else:
            if 'seg_map_path' not in data_sample or 'segments_info' not in data_sample:
                raise KeyError('PanopticQualityMetric: without ann_file, data samples need '
                               '"seg_map_path" and "segments_info" (add them to the meta_keys of '
                               'PackDetInputs)')
            path = data_sample['seg_map_path']
            categories, _ = self._labels()
            segments = []
            for seg in data_sample['segments_info']:
                label = seg['category']
                # mmdet's CocoPanopticDataset marks crowd things with is_thing=False.
                crowd = seg.get('iscrowd', categories[label]['isthing']
                                and not seg.get('is_thing', True))
                segments.append(dict(id=seg['id'], category_id=label, iscrowd=int(crowd)))
        return path, segments

    def _ground_truth_ids(self, path: str) -> Tuple[IdRuns, bool]:
        """The ground-truth id map of ``path`` as runs, from the cache or decoded.

        Returns:
            tuple: the runs and whether they were decoded now (to be offered to the cache).
        """
        runs = self._gt_cache.get(path)
        if runs is not None:
            return runs, False
        return read_panoptic_runs(path, self.backend_args, self.decoder), True

    def _cache_ground_truth(self, path: str, runs: IdRuns) -> None:
        """Keep ``runs`` if the byte budget allows (first come, first kept; no eviction)."""
        if path in self._gt_cache:
            return
        if self._gt_cache_used + runs.nbytes <= self.gt_cache_bytes:
            self._gt_cache[path] = runs
            self._gt_cache_used += runs.nbytes
        elif not self._gt_cache_full_logged:
            self._gt_cache_full_logged = True
            print_log(
                f'PanopticQualityMetric: the ground-truth cache is full ({len(self._gt_cache)} '
                f'images, {self._gt_cache_used / 2**20:.1f} MiB of gt_cache_bytes='
                f'{self.gt_cache_bytes}); later images are decoded at every evaluation',
                logger='current',
                level=logging.INFO)

    def _png_name(self, image_id: Any) -> str:
        if isinstance(image_id, (int, np.integer)):
            return f'{int(image_id):012d}.png'
        return str(image_id).replace('/', '_').replace(os.sep, '_') + '.png'

    def _process_one(self, data_sample: dict) -> dict:
        categories, _ = self._labels()
        image_id = data_sample['img_id']
        pred_ids, pred_segments = self._prediction(data_sample)
        result: Dict[str, Any] = {}
        if self.seg_out_dir is not None:
            import cv2
            file_name = self._png_name(image_id)
            cv2.imwrite(osp.join(self.seg_out_dir, file_name), id2rgb(pred_ids.to_map())[..., ::-1])
            result['pred_ann'] = dict(
                image_id=image_id, file_name=file_name, segments_info=pred_segments)
        if not self.format_only:
            path, gt_segments = self._ground_truth(data_sample)
            gt_ids, decoded = self._ground_truth_ids(path)
            if decoded and self.gt_cache_bytes:
                result['_new_gt'] = (path, gt_ids)  # cached by process(), in the main thread
            if gt_ids.shape != pred_ids.shape:
                raise ValueError(f'PanopticQualityMetric: image {image_id!r}: prediction '
                                 f'{pred_ids.shape} and ground truth {gt_ids.shape} differ; '
                                 'predict at the original image size')
            result['stats'] = panoptic_stats_single(
                gt_ids,
                gt_segments,
                pred_ids,
                pred_segments,
                categories,
                self.matching,
                image_id=image_id)
        return result

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Compute the small per-image statistics (and write the PNGs with ``outfile_prefix``).

        Args:
            data_batch (Any): Unused (the dataloader batch).
            data_samples (Sequence[dict]): Data samples with predictions.
        """
        if self.seg_out_dir is not None:
            os.makedirs(self.seg_out_dir, exist_ok=True)
        if self.nproc > 1 and len(data_samples) > 1:
            with ThreadPoolExecutor(min(self.nproc, len(data_samples))) as pool:
                results = list(pool.map(self._process_one, data_samples))
        else:
            results = [self._process_one(sample) for sample in data_samples]
        for result in results:
            new_gt = result.pop('_new_gt', None)  # results are gathered across ranks: keep small
            if new_gt is not None:
                self._cache_ground_truth(*new_gt)
        self.results.extend(results)

    # --- dataset level -------------------------------------------------------------------------
    def _miou(self, stats: PanopticStats) -> float:
        """Mean IoU over the dataset classes (in label order), from the summed semantic areas.

        As mmseg's ``IoUMetric``: a class whose union is empty is left out of the mean (NaN IoU);
        json categories that are not dataset classes do not count.
        """
        _, label2cat = self._labels()
        order = {int(cat_id): k for k, cat_id in enumerate(stats.cat_ids)}
        index = np.array([order[int(cat_id)] for cat_id in label2cat])  # label -> stats column
        return 100 * float(np.nanmean(semantic_iou(stats)[index]))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Write the result files if asked, sum the statistics and average them.

        Args:
            results (list): Per-image results of all ranks.

        Returns:
            dict[str, float]: ``PQ SQ RQ PQ_th SQ_th RQ_th PQ_st SQ_st RQ_st Acc_th Prec_th
            Acc_th_pix Prec_th_pix`` and, with ``with_miou``, ``mIoU`` (percent); empty with
            ``format_only``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if self.outfile_prefix is not None:
            json_file = f'{self.outfile_prefix}.panoptic.json'
            dump(dict(annotations=[r['pred_ann'] for r in results]), json_file)
            print_log(
                f'panoptic results written to {json_file} and {self.seg_out_dir}', logger=logger)
        if self.format_only:
            return {}
        categories, _ = self._labels()
        total = PanopticStats(categories)
        for result in results:
            total += result['stats']
        summary = summarize_panoptic_stats(total, classwise=self.classwise)
        if self.with_miou:
            summary['mIoU'] = self._miou(total)
        else:
            summary.pop('mIoU')
        if 'per_class' in summary and not self.with_miou:
            for entry in summary['per_class'].values():
                entry.pop('IoU')
        tables = panoptic_result_tables(summary, digits=3)
        print_log('Panoptic evaluation results:\n' + '\n'.join(tables), logger=logger)
        return {key: float(summary[key]) for key in PANOPTIC_KEYS if key in summary}
