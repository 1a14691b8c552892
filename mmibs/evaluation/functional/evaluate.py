# Copyright (c) mmibs contributors. All rights reserved.
"""Offline panoptic evaluation of saved predictions (COCO-panoptic json + RGB-id PNGs).

Same inputs as panopticapi's ``pq_compute`` and cityscapesscripts' ``evaluatePanoptic``: images are
matched by ``image_id`` (ints or Cityscapes' ``<city>_<seq>_<frame>`` strings), each side's PNG is
found through its own ``file_name``, categories and thing flags come from the ground-truth json.
Besides PQ it gives the thing pixel accuracy and precision defined in ``docs/metrics.md``.

Speed: each image pair is two PNG decodes (imgread's Rust decoder when installed,
:mod:`.panoptic_png`) and a few passes over the pixels (:func:`segment_overlaps`); all cores work
through a thread pool, since the decoder, OpenCV and numpy's large-array loops release the GIL
(no process start-up, no pickling).
"""
import os
import os.path as osp
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from mmengine.utils import ProgressBar
from terminaltables import AsciiTable

from mmibs.utils.checks import check_choice
from mmibs.utils.fileio import load_json

from .panoptic_png import PNG_DECODERS, png_decoder_available, read_panoptic_runs
from .panoptic_quality import PanopticStats, panoptic_stats_single, summarize_panoptic_stats
from .thing_pixel_stats import MATCHING_MODES

#: Keys of the dataset-level results, in table order.
PANOPTIC_KEYS = ('PQ', 'SQ', 'RQ', 'PQ_th', 'SQ_th', 'RQ_th', 'PQ_st', 'SQ_st', 'RQ_st', 'Acc_th',
                 'Prec_th', 'Acc_th_pix', 'Prec_th_pix', 'mIoU')


def _load_json(source: Union[str, dict], what: str) -> dict:
    """A json given as a dict or a path (read by the datasets' ``load_json``)."""
    if isinstance(source, dict):
        return source
    try:
        return load_json(source)
    except FileNotFoundError as err:
        raise FileNotFoundError(f'evaluate_panoptic: {what} json {source} does not exist') from err


def match_annotations(gt_json: dict, pred_json: dict) -> List[Tuple[dict, dict]]:
    """Pair every ground-truth annotation with the prediction of the same ``image_id``.

    Args:
        gt_json (dict): COCO-panoptic ground truth (``annotations``).
        pred_json (dict): COCO-panoptic predictions (``annotations``).

    Returns:
        list[tuple[dict, dict]]: (ground truth, prediction) annotations, in ground-truth order.
    """
    preds = {}
    for ann in pred_json.get('annotations', []):
        if ann['image_id'] in preds:
            raise ValueError(f'evaluate_panoptic: two predictions for image_id {ann["image_id"]!r}')
        preds[ann['image_id']] = ann
    pairs = []
    for gt_ann in gt_json['annotations']:
        if gt_ann['image_id'] not in preds:
            raise KeyError(f'evaluate_panoptic: no prediction for image_id {gt_ann["image_id"]!r} '
                           f'(the prediction json has {len(preds)} annotations)')
        pairs.append((gt_ann, preds[gt_ann['image_id']]))
    return pairs


def _image_stats(pair: Tuple[dict, dict], gt_folder: str, pred_folder: str,
                 categories: Sequence[dict], matching: str, decoder: str) -> PanopticStats:
    """Read one image pair and compute its statistics (runs in a worker thread)."""
    gt_ann, pred_ann = pair
    # as runs: no full-size map outlives its decoding, and the pair is merged on small arrays
    gt_ids = read_panoptic_runs(osp.join(gt_folder, gt_ann['file_name']), decoder=decoder)
    pred_ids = read_panoptic_runs(osp.join(pred_folder, pred_ann['file_name']), decoder=decoder)
    return panoptic_stats_single(
        gt_ids,
        gt_ann['segments_info'],
        pred_ids,
        pred_ann['segments_info'],
        categories,
        matching,
        image_id=gt_ann['image_id'])


def accumulate_panoptic_stats(pairs: Sequence[Tuple[dict, dict]],
                              gt_folder: str,
                              pred_folder: str,
                              categories: Sequence[dict],
                              matching: str = 'pq',
                              nproc: int = 1,
                              show_progress: bool = True,
                              decoder: str = 'auto') -> PanopticStats:
    """Sum the per-image statistics of matched annotation pairs.

    Args:
        pairs (Sequence[tuple[dict, dict]]): From :func:`match_annotations`.
        gt_folder (str): Folder of the ground-truth PNGs.
        pred_folder (str): Folder of the predicted PNGs.
        categories (Sequence[dict]): Ground-truth json categories.
        matching (str): 'pq' or 'max_overlap'. Defaults to 'pq'.
        nproc (int): Worker threads; 1 computes in the calling thread. The PNG decoders, OpenCV
            and numpy release the GIL, so threads use several cores. Defaults to 1.
        show_progress (bool): Show an mmengine progress bar (on stderr). Defaults to True.
        decoder (str): PNG decoder, 'auto', 'imgread' or 'cv2' (:mod:`.panoptic_png`); all give
            the same ids. Defaults to 'auto'.

    Returns:
        PanopticStats: The sum over all pairs.
    """
    if not png_decoder_available(decoder):
        raise ImportError(f'accumulate_panoptic_stats: decoder={decoder!r} is not installed')
    work = partial(
        _image_stats,
        gt_folder=gt_folder,
        pred_folder=pred_folder,
        categories=list(categories),
        matching=matching,
        decoder=decoder)
    total = PanopticStats(categories)
    bar = ProgressBar(len(pairs), file=sys.stderr) if show_progress and pairs else None
    nproc = max(1, min(nproc, len(pairs)))
    if nproc == 1:
        results = map(work, pairs)
    else:
        pool = ThreadPoolExecutor(nproc, thread_name_prefix='evaluate_panoptic')
        # Results come back in order (the float sums do not depend on nproc) and are small: the
        # decoded maps of an image are freed in its worker, so memory stays flat on large sets.
        results = pool.map(work, pairs)
    try:
        for stats in results:
            total += stats
            if bar is not None:
                bar.update()
    finally:
        if nproc > 1:
            pool.shutdown(wait=True, cancel_futures=True)
    if bar is not None:
        bar.file.write('\n')
    return total


def evaluate_panoptic(gt_json: Union[str, dict],
                      gt_folder: str,
                      pred_json: Union[str, dict],
                      pred_folder: str,
                      matching: str = 'pq',
                      nproc: Optional[int] = None,
                      classwise: bool = False,
                      show_progress: bool = True,
                      decoder: str = 'auto') -> Dict[str, Any]:
    """Evaluate saved panoptic predictions: PQ/SQ/RQ and thing pixel accuracy / precision.

    PQ/SQ/RQ equal panopticapi's ``pq_compute`` and cityscapesscripts' ``evaluatePanoptic`` on the
    same files. Acc_th / Prec_th as defined in ``docs/metrics.md``: per thing category c,
    ``TP_c`` = matched pixels, ``FN_c`` = pixels of non-crowd ground-truth segments outside their
    match, ``FP_c`` = pixels of predicted segments outside their match, VOID and crowd regions of c;
    Acc_th = mean_c TP_c / (TP_c + FN_c), Prec_th = mean_c TP_c / (TP_c + FP_c), ``*_pix`` the
    ratios of the sums. ``matching='pq'`` pairs segments by the PQ matching (IoU > 0.5),
    ``'max_overlap'`` pairs each segment with its largest same-class overlap (see
    :mod:`mmibs.evaluation.functional.thing_pixel_stats`).

    Args:
        gt_json (str | dict): Ground-truth COCO-panoptic json (or its loaded content).
        gt_folder (str): Folder of the ground-truth PNGs (``annotations[].file_name``).
        pred_json (str | dict): Predicted COCO-panoptic json (or its loaded content).
        pred_folder (str): Folder of the predicted PNGs.
        matching (str): 'pq' or 'max_overlap'. Defaults to 'pq'.
        nproc (int, optional): Worker threads. Defaults to None (all cores).
        classwise (bool): Add ``per_class`` results. Defaults to False.
        show_progress (bool): Show a progress bar. Defaults to True.
        decoder (str): PNG decoder, 'auto', 'imgread' or 'cv2' (same results).
            Defaults to 'auto'.

    Returns:
        dict: ``PQ SQ RQ PQ_th SQ_th RQ_th PQ_st SQ_st RQ_st Acc_th Prec_th Acc_th_pix
        Prec_th_pix mIoU`` in percent (0-100), ``N N_th N_st`` (categories averaged),
        ``num_images``, ``time`` (seconds) and, with ``classwise``, ``per_class``.
    """
    start = time.perf_counter()
    check_choice('evaluate_panoptic', 'matching', matching, MATCHING_MODES)
    if not png_decoder_available(decoder):
        raise ImportError(f'evaluate_panoptic: decoder={decoder!r} needs the imgread package '
                          f'(pip install imgread), or use one of {PNG_DECODERS[::2]}')
    for folder, what in ((gt_folder, 'ground-truth'), (pred_folder, 'prediction')):
        if not osp.isdir(folder):
            raise FileNotFoundError(f'evaluate_panoptic: {what} folder {folder} does not exist')
    gt = _load_json(gt_json, 'ground-truth')
    pred = _load_json(pred_json, 'prediction')
    if 'categories' not in gt:
        raise KeyError('evaluate_panoptic: the ground-truth json has no "categories"')
    pairs = match_annotations(gt, pred)
    if nproc is None:
        nproc = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else \
            (os.cpu_count() or 1)
    stats = accumulate_panoptic_stats(pairs, gt_folder, pred_folder, gt['categories'], matching,
                                      nproc, show_progress, decoder)
    results = summarize_panoptic_stats(stats, classwise=classwise)
    results['num_images'] = len(pairs)
    results['time'] = time.perf_counter() - start
    return results


def panoptic_result_tables(results: Dict[str, Any], digits: int = 2) -> List[str]:
    """Format results as text tables: the summary and, when present, the per-class table.

    Args:
        results (dict): Output of :func:`evaluate_panoptic` or ``summarize_panoptic_stats``.
        digits (int): Decimals. Defaults to 2.

    Returns:
        list[str]: One or two tables.
    """
    fmt = f'{{:.{digits}f}}'
    rows = [['', 'PQ', 'SQ', 'RQ', 'categories']]
    for name, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        rows.append([name] + [fmt.format(results[f'{k}{suffix}'])
                              for k in ('PQ', 'SQ', 'RQ')] + [str(results.get(f'N{suffix}', ''))])
    tables = [AsciiTable(rows).table]
    pixel_keys = [k for k in PANOPTIC_KEYS[9:] if k in results]
    tables.append(AsciiTable([pixel_keys, [fmt.format(results[k]) for k in pixel_keys]]).table)
    if 'per_class' in results:
        rows = [['category', 'thing', 'PQ', 'SQ', 'RQ', 'Acc', 'Prec', 'IoU']]
        for name, entry in results['per_class'].items():
            rows.append(
                [name, 'y' if entry['isthing'] else 'n'] +
                [fmt.format(entry[k]) for k in ('PQ', 'SQ', 'RQ')] +
                [fmt.format(entry[k]) if k in entry else '-' for k in ('Acc', 'Prec', 'IoU')])
        tables.append(AsciiTable(rows).table)
    return tables
