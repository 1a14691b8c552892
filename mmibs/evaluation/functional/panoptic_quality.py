# Copyright (c) mmibs contributors. All rights reserved.
"""Per-image panoptic statistics in one pass: PQ counts and thing pixel counts.

The PQ rules are those of panopticapi's and cityscapesscripts' ``pq_compute_single_core`` (the two
are the same code), so the numbers are identical, but computed differently: those evaluators sort
every pixel twice (``np.unique`` on the prediction, then on the combined 64-bit ids) and loop over
pairs in Python. Here the two id maps are cut into the runs of pixels along which neither id
changes (:func:`segment_overlaps`), only each run's ids are looked up among the json segments, one
weighted ``np.bincount`` gives the whole G x P overlap matrix, and the matching is array arithmetic
on that small matrix.

The thing pixel counts behind Acc_th and Prec_th (``docs/metrics.md``) come from the same overlap
matrix (:mod:`.thing_pixel_stats`).

Shape shorthand: H, W image; G ground-truth segments; P predicted segments; C categories.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mmibs.utils.checks import check_choice
from mmibs.utils.panoptic_ids import id2rgb, rgb2id  # noqa: F401  (re-exported)
from .id_runs import IdRuns, changes
from .panoptic_png import read_panoptic_png  # noqa: F401  (re-exported)
from .thing_pixel_stats import MATCHING_MODES, sum_by_category, thing_pixel_counts

#: COCO-panoptic id of unlabelled pixels.
VOID = 0


def parse_categories(categories: Sequence[dict]) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Ids, thing flags and names of COCO-panoptic ``categories`` (kept in the given order).

    Args:
        categories (Sequence[dict]): Entries with ``id``, ``isthing`` and optionally ``name``.

    Returns:
        tuple: ``cat_ids`` int64 (C, ), ``isthing`` bool (C, ), ``names`` list of C str.
    """
    cat_ids = np.array([int(cat['id']) for cat in categories], dtype=np.int64)
    if len(set(cat_ids.tolist())) != len(cat_ids):
        raise ValueError(f'categories: duplicate category ids in {cat_ids.tolist()}')
    isthing = np.array([bool(cat.get('isthing', 0)) for cat in categories], dtype=bool)
    names = [str(cat.get('name', cat['id'])) for cat in categories]
    return cat_ids, isthing, names


class PanopticStats:
    """Summable per-category statistics of panoptic segmentation.

    PQ counts (as panopticapi's ``PQStat``): ``iou`` (sum of matched IoUs), ``tp``, ``fp``, ``fn``.
    Thing pixel counts (``docs/metrics.md``, zero for stuff): ``pix_tp_gt``, ``pix_fn``,
    ``pix_tp_pred``, ``pix_fp``. Semantic areas (mmseg's ``intersect_and_union`` on the category
    maps, VOID and unknown ground truth ignored, crowd counted as its category):
    ``sem_intersect``, ``sem_pred``, ``sem_label``. Every field is an array of shape (C, ) in the
    order of ``categories``. Instances are small and picklable, so a metric can keep one per image
    and gather them across ranks.

    Args:
        categories (Sequence[dict]): COCO-panoptic categories (``id``, ``name``, ``isthing``).
    """
    FIELDS = ('iou', 'tp', 'fp', 'fn', 'pix_tp_gt', 'pix_fn', 'pix_tp_pred', 'pix_fp',
              'sem_intersect', 'sem_pred', 'sem_label')

    def __init__(self, categories: Sequence[dict]) -> None:
        self.cat_ids, self.isthing, self.names = parse_categories(categories)
        num_categories = len(self.cat_ids)
        self.iou = np.zeros(num_categories, dtype=np.float64)
        for field in self.FIELDS[1:]:
            setattr(self, field, np.zeros(num_categories, dtype=np.int64))

    @property
    def categories(self) -> List[dict]:
        return [
            dict(id=int(i), name=n, isthing=int(t))
            for i, n, t in zip(self.cat_ids, self.names, self.isthing)
        ]

    def __iadd__(self, other: 'PanopticStats') -> 'PanopticStats':
        if not np.array_equal(self.cat_ids, other.cat_ids):
            raise ValueError('PanopticStats: cannot add statistics over different categories '
                             f'({self.cat_ids.tolist()} vs {other.cat_ids.tolist()})')
        for field in self.FIELDS:
            getattr(self, field).__iadd__(getattr(other, field))
        return self

    def __add__(self, other: 'PanopticStats') -> 'PanopticStats':
        total = PanopticStats(self.categories)
        total += self
        total += other
        return total

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(categories={len(self.cat_ids)}, '
                f'tp={int(self.tp.sum())}, fp={int(self.fp.sum())}, fn={int(self.fn.sum())})')


def _segment_index(values: np.ndarray, seg_ids: np.ndarray, unknown: int) -> np.ndarray:
    """Map ids to ``0`` (VOID), ``k + 1`` (``seg_ids[k]``) or ``unknown``.

    Args:
        values (np.ndarray): Segment ids (the ids of runs), shape (R, ).
        seg_ids (np.ndarray): Known non-zero segment ids, int64, shape (K, ).
        unknown (int): Index of ids that are neither VOID nor known.

    Returns:
        np.ndarray: intp indices, shape (R, ).
    """
    if values.size and np.issubdtype(values.dtype, np.signedinteger) and values.min() < 0:
        raise ValueError(f'segment ids must be non-negative, got {values.min()}')
    if len(seg_ids) == 0:
        index = np.full(values.shape, unknown, dtype=np.intp)
    else:
        order = np.argsort(seg_ids, kind='stable')
        sorted_ids = seg_ids[order]
        # compare as int64: every id type here (uint8/16/32, int32/64) fits without loss
        values = values.astype(np.int64, copy=False)
        pos = np.searchsorted(sorted_ids, values).clip(max=len(sorted_ids) - 1)
        index = np.where(sorted_ids[pos] == values, order[pos] + 1, unknown)
    index[values == VOID] = 0
    return index


def _segment_table(segments: Sequence[dict], cat_index: Dict[int, int], side: str,
                   image_id: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, category indices and crowd flags of a ``segments_info`` list, validated."""
    seg_ids = np.array([int(seg['id']) for seg in segments], dtype=np.int64)
    if (seg_ids < 0).any():
        raise ValueError(f'image {image_id!r}: negative {side} segment ids {seg_ids.tolist()}')
    if (seg_ids == VOID).any():
        raise ValueError(f'image {image_id!r}: {side} segment id 0 is reserved for VOID')
    if len(np.unique(seg_ids)) != len(seg_ids):
        raise ValueError(f'image {image_id!r}: duplicate {side} segment ids {seg_ids.tolist()}')
    categories = []
    for seg in segments:
        if seg['category_id'] not in cat_index:
            raise KeyError(f'image {image_id!r}: {side} segment {seg["id"]} has unknown '
                           f'category_id {seg["category_id"]}')
        categories.append(cat_index[seg['category_id']])
    crowd = np.array([bool(seg.get('iscrowd', 0)) for seg in segments], dtype=bool)
    return seg_ids, np.array(categories, dtype=np.intp), crowd


def _pair_runs(gt_ids: Union[np.ndarray, IdRuns],
               pred_ids: Union[np.ndarray, IdRuns]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs along which neither map changes: first pixels and both ids, each shape (R, )."""
    if isinstance(gt_ids, IdRuns) and isinstance(pred_ids, IdRuns):
        # Merge the two sorted start lists (a stable sort of two sorted halves is linear) and
        # count, at each merged start, how many starts of each side came before it: the run of
        # that side it lies in. Of equal starts the last one is kept, past both sides' starts.
        starts = np.concatenate((gt_ids.starts, pred_ids.starts))
        order = np.argsort(starts, kind='stable')
        starts = starts[order]
        from_gt = order < len(gt_ids.starts)
        keep = np.empty(starts.shape, dtype=bool)
        keep[-1:] = True
        np.not_equal(starts[1:], starts[:-1], out=keep[:-1])
        gt_run = np.cumsum(from_gt)[keep] - 1
        pred_run = np.cumsum(~from_gt)[keep] - 1
        return starts[keep], gt_ids.values[gt_run], pred_ids.values[pred_run]
    maps = [ids.ravel() for ids in (gt_ids, pred_ids) if not isinstance(ids, IdRuns)]
    runs = [ids for ids in (gt_ids, pred_ids) if isinstance(ids, IdRuns)]
    change = changes(maps[0])  # shape (N, )
    if len(maps) == 2:
        np.logical_or(change[1:], np.not_equal(maps[1][1:], maps[1][:-1]), out=change[1:])
    else:
        change[runs[0].starts] = True
    starts = np.flatnonzero(change)  # shape (R, )
    return starts, _values_at(gt_ids, starts), _values_at(pred_ids, starts)


def _values_at(ids: Union[np.ndarray, IdRuns], starts: np.ndarray) -> np.ndarray:
    """The id of each pixel in ``starts``, shape (R, )."""
    if isinstance(ids, IdRuns):  # the run each pixel lies in
        return ids.values[np.searchsorted(ids.starts, starts, side='right') - 1]
    return ids.ravel()[starts]


def segment_overlaps(gt_ids: Union[np.ndarray, IdRuns], gt_seg_ids: np.ndarray,
                     pred_ids: Union[np.ndarray, IdRuns], pred_seg_ids: np.ndarray) -> np.ndarray:
    """Pixel counts of every (ground-truth id, predicted id) pair.

    The maps are cut into the runs along which neither id changes (comparisons of neighbouring
    pixels and one ``flatnonzero``, or a merge of two :class:`IdRuns`); only the run starts are
    looked up and one weighted ``np.bincount`` over ``gt_index * (P + 2) + pred_index`` sums the
    run lengths. A panoptic pair has some 10**4 - 10**5 such runs for 2 * 10**6 pixels, so the
    lookups and the histogram cost little, and the counts are the pixel counts exactly (float64
    sums of integers below 2**53).

    Args:
        gt_ids (np.ndarray | IdRuns): Ground-truth id map, shape (H, W), or its runs.
        gt_seg_ids (np.ndarray): Ground-truth segment ids of the json, shape (G, ).
        pred_ids (np.ndarray | IdRuns): Predicted id map, shape (H, W), or its runs.
        pred_seg_ids (np.ndarray): Predicted segment ids of the json, shape (P, ).

    Returns:
        np.ndarray: int64 counts, shape (G + 2, P + 2). Row 0 / column 0 is VOID, rows and
        columns 1..G / 1..P the json segments in order, row G + 1 / column P + 1 ids of the PNG
        missing from the json.
    """
    if tuple(gt_ids.shape) != tuple(pred_ids.shape):
        raise ValueError(f'segment_overlaps: ground truth {tuple(gt_ids.shape)} and prediction '
                         f'{tuple(pred_ids.shape)} differ in size')
    num_gt, num_pred = len(gt_seg_ids), len(pred_seg_ids)
    size = int(np.prod(gt_ids.shape))
    if size == 0:
        return np.zeros((num_gt + 2, num_pred + 2), dtype=np.int64)
    starts, gt_values, pred_values = _pair_runs(gt_ids, pred_ids)  # each shape (R, )
    lengths = np.diff(starts, append=size)  # shape (R, )
    gt_index = _segment_index(gt_values, gt_seg_ids, num_gt + 1)
    pred_index = _segment_index(pred_values, pred_seg_ids, num_pred + 1)
    gt_index *= num_pred + 2
    gt_index += pred_index  # combined index of each run
    counts = np.bincount(gt_index, weights=lengths, minlength=(num_gt + 2) * (num_pred + 2))
    # shape (G+2)*(P+2) -> (G+2, P+2); exact: integer sums far below 2**53
    return np.rint(counts).astype(np.int64).reshape(num_gt + 2, num_pred + 2)


def panoptic_stats_single(gt_ids: Union[np.ndarray, IdRuns],
                          gt_segments: Sequence[dict],
                          pred_ids: Union[np.ndarray, IdRuns],
                          pred_segments: Sequence[dict],
                          categories: Sequence[dict],
                          matching: str = 'pq',
                          image_id: Optional[Any] = None) -> PanopticStats:
    """PQ and thing pixel statistics of one image.

    Same rules as panopticapi's ``pq_compute_single_core``: a pair matches when categories agree,
    the ground truth is not crowd and ``IoU > 0.5`` with the union leaving out the prediction's VOID
    pixels; the ground-truth area is the json ``area`` when given (as those evaluators read it) and
    the pixel count otherwise; an unmatched prediction is no false positive when more than half of
    it lies on VOID or on the crowd region of its category (the last crowd segment of that category
    in ``gt_segments``, as there). Ground-truth PNG ids absent from the json are neither segments
    nor VOID.

    Args:
        gt_ids (np.ndarray | IdRuns): Ground-truth id map, shape (H, W), or its runs; 0 is VOID.
        gt_segments (Sequence[dict]): Ground-truth ``segments_info`` (``id``, ``category_id``,
            ``iscrowd``, optional ``area``).
        pred_ids (np.ndarray | IdRuns): Predicted id map, shape (H, W), or its runs; 0 is VOID.
        pred_segments (Sequence[dict]): Predicted ``segments_info`` (``id``, ``category_id``).
        categories (Sequence[dict]): COCO-panoptic categories (``id``, ``name``, ``isthing``).
        matching (str): Pairing of the thing pixel counts, 'pq' or 'max_overlap'
            (:mod:`.thing_pixel_stats`). PQ itself always uses the PQ matching. Defaults to 'pq'.
        image_id (Any, optional): Named in error messages. Defaults to None.

    Returns:
        PanopticStats: Statistics of this image.
    """
    check_choice('panoptic_stats_single', 'matching', matching, MATCHING_MODES)
    stats = PanopticStats(categories)
    cat_index = {int(cat_id): k for k, cat_id in enumerate(stats.cat_ids)}
    num_categories = len(stats.cat_ids)
    gt_seg_ids, gt_cat, gt_crowd = _segment_table(gt_segments, cat_index, 'ground-truth', image_id)
    pred_seg_ids, pred_cat, _ = _segment_table(pred_segments, cat_index, 'predicted', image_id)
    num_gt, num_pred = len(gt_seg_ids), len(pred_seg_ids)

    counts = segment_overlaps(gt_ids, gt_seg_ids, pred_ids, pred_seg_ids)  # (G+2, P+2)
    if counts[:, -1].any():
        pred_values = pred_ids.values if isinstance(pred_ids, IdRuns) else pred_ids
        known = np.append(pred_seg_ids, VOID).astype(pred_values.dtype)
        missing = np.setdiff1d(np.unique(pred_values), known)
        raise KeyError(f'image {image_id!r}: predicted segment ids {missing.tolist()} are in the '
                       'PNG but not in segments_info')
    overlaps = counts[1:num_gt + 1, 1:num_pred + 1]  # shape (G, P)
    pred_area = counts[:, 1:num_pred + 1].sum(axis=0)  # shape (P, )
    if (pred_area == 0).any():
        raise KeyError(f'image {image_id!r}: predicted segment ids '
                       f'{pred_seg_ids[pred_area == 0].tolist()} are in segments_info but not in '
                       'the PNG')
    pred_on_void = counts[VOID, 1:num_pred + 1]  # shape (P, )
    gt_pixels = counts[1:num_gt + 1].sum(axis=1)  # shape (G, )
    gt_area = np.array([seg.get('area', n) for seg, n in zip(gt_segments, gt_pixels)],
                       dtype=np.int64)

    # PQ matching, on the G x P matrix (panopticapi loops over the same pairs).
    same_cat = gt_cat[:, None] == pred_cat[None, :]  # shape (G, P)
    candidate = same_cat & ~gt_crowd[:, None] & (overlaps > 0)
    union = gt_area[:, None] + pred_area[None, :] - overlaps - pred_on_void[None, :]
    iou = np.where(candidate, overlaps / np.maximum(union, 1), 0.0)
    matched = iou > 0.5  # unique: two pairs with IoU > 0.5 cannot share a segment
    gt_idx, pred_idx = np.nonzero(matched)
    stats.tp += np.bincount(gt_cat[gt_idx], minlength=num_categories)
    stats.iou += np.bincount(
        gt_cat[gt_idx], weights=iou[gt_idx, pred_idx], minlength=num_categories)
    gt_unmatched = ~gt_crowd & ~matched.any(axis=1)
    stats.fn += np.bincount(gt_cat[gt_unmatched], minlength=num_categories)

    # Unmatched predictions mostly on VOID or on their category's crowd region are ignored. Like
    # panopticapi, only the last crowd segment of a category in the json counts here.
    last_crowd = np.full(num_categories, -1, dtype=np.intp)
    for g in np.flatnonzero(gt_crowd):
        last_crowd[gt_cat[g]] = g
    crowd_row = last_crowd[pred_cat]  # shape (P, )
    on_crowd = np.zeros(num_pred, dtype=np.int64)
    has_crowd = crowd_row >= 0
    on_crowd[has_crowd] = overlaps[crowd_row[has_crowd], np.flatnonzero(has_crowd)]
    ignored = (pred_on_void + on_crowd) / pred_area > 0.5
    pred_fp = ~matched.any(axis=0) & ~ignored
    stats.fp += np.bincount(pred_cat[pred_fp], minlength=num_categories)

    # Acc_th / Prec_th leave out *all* crowd regions of the prediction's category (not only the
    # last one, as PQ does; docs/metrics.md).
    crowd_same_cat = gt_crowd[:, None] & same_cat  # shape (G, P)
    pred_valid = pred_area - pred_on_void - (overlaps * crowd_same_cat).sum(axis=0)
    (stats.pix_tp_gt, stats.pix_fn, stats.pix_tp_pred,
     stats.pix_fp) = thing_pixel_counts(overlaps, gt_pixels, gt_cat, gt_crowd, pred_valid, pred_cat,
                                        matched, stats.isthing, matching)

    # Semantic areas from the same matrix: no second pass over the pixels. A prediction's pixels
    # on VOID or unknown ground truth are ignored, as mmseg ignores label 255.
    stats.sem_label = sum_by_category(gt_pixels, gt_cat, num_categories)
    stats.sem_pred = sum_by_category(overlaps.sum(axis=0), pred_cat, num_categories)
    stats.sem_intersect = sum_by_category((overlaps * same_cat).sum(axis=1), gt_cat, num_categories)
    return stats


def _pq_average(stats: PanopticStats, mask: np.ndarray) -> Tuple[float, float, float, int]:
    """Mean PQ, SQ, RQ over the categories of ``mask`` that occur (``tp + fp + fn > 0``)."""
    tp, fp, fn = stats.tp, stats.fp, stats.fn
    valid = mask & (tp + fp + fn > 0)
    num = int(valid.sum())
    if num == 0:
        return 0.0, 0.0, 0.0, 0
    denominator = tp[valid] + 0.5 * fp[valid] + 0.5 * fn[valid]
    pq = stats.iou[valid] / denominator
    sq = np.where(tp[valid] > 0, stats.iou[valid] / np.maximum(tp[valid], 1), 0.0)
    rq = tp[valid] / denominator
    return float(pq.sum() / num), float(sq.sum() / num), float(rq.sum() / num), num


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` per category, NaN where the denominator is 0."""
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def semantic_iou(stats: PanopticStats) -> np.ndarray:
    """IoU of each category's semantic map, NaN where the union is empty (as mmseg)."""
    union = stats.sem_pred + stats.sem_label - stats.sem_intersect
    return _ratio(stats.sem_intersect, union)


def summarize_panoptic_stats(stats: PanopticStats, classwise: bool = False) -> Dict[str, Any]:
    """Dataset metrics in percent from summed statistics.

    PQ/SQ/RQ average over the categories that occur, as panopticapi's ``pq_average`` (0.0 where no
    category of a group occurs; the official evaluators divide by zero there). Acc_th / Prec_th
    average ``TP/(TP+FN)`` / ``TP/(TP+FP)`` over the thing categories whose denominator is not 0;
    Acc_th_pix / Prec_th_pix are the same ratios of the sums over all thing categories
    (``docs/metrics.md``). mIoU is the mean IoU of the semantic maps over the categories
    whose union is not empty (mmseg's ``nanmean``).

    Args:
        stats (PanopticStats): Statistics summed over the dataset.
        classwise (bool): Add ``per_class``: category name -> ``PQ, SQ, RQ, IoU`` (and ``Acc,
            Prec`` for things; NaN when undefined). Defaults to False.

    Returns:
        dict: ``PQ SQ RQ PQ_th SQ_th RQ_th PQ_st SQ_st RQ_st Acc_th Prec_th Acc_th_pix Prec_th_pix
        mIoU`` (float, percent) and ``N N_th N_st`` (number of categories averaged).
    """
    results: Dict[str, Any] = {}
    for suffix, mask in (('', np.ones_like(stats.isthing)), ('_th', stats.isthing),
                         ('_st', ~stats.isthing)):
        pq, sq, rq, num = _pq_average(stats, mask)
        results.update({
            f'PQ{suffix}': 100 * pq,
            f'SQ{suffix}': 100 * sq,
            f'RQ{suffix}': 100 * rq,
            f'N{suffix}': num
        })
    things = stats.isthing
    acc = _ratio(stats.pix_tp_gt, stats.pix_tp_gt + stats.pix_fn)  # shape (C, )
    prec = _ratio(stats.pix_tp_pred, stats.pix_tp_pred + stats.pix_fp)  # shape (C, )
    for key, values in (('Acc_th', acc[things]), ('Prec_th', prec[things])):
        values = values[~np.isnan(values)]
        results[key] = 100 * float(values.mean()) if values.size else 0.0
    tp_gt, fn = stats.pix_tp_gt[things].sum(), stats.pix_fn[things].sum()
    tp_pred, fp = stats.pix_tp_pred[things].sum(), stats.pix_fp[things].sum()
    results['Acc_th_pix'] = 100 * float(tp_gt / (tp_gt + fn)) if tp_gt + fn else 0.0
    results['Prec_th_pix'] = 100 * float(tp_pred / (tp_pred + fp)) if tp_pred + fp else 0.0
    iou = semantic_iou(stats)  # shape (C, )
    results['mIoU'] = 100 * float(np.nanmean(iou)) if (~np.isnan(iou)).any() else 0.0

    if classwise:
        denominator = stats.tp + 0.5 * stats.fp + 0.5 * stats.fn
        per_class = {}
        for k, name in enumerate(stats.names):
            occurs = denominator[k] > 0
            entry = dict(
                PQ=float(100 * stats.iou[k] / denominator[k]) if occurs else 0.0,
                SQ=float(100 * stats.iou[k] / stats.tp[k]) if stats.tp[k] else 0.0,
                RQ=float(100 * stats.tp[k] / denominator[k]) if occurs else 0.0,
                IoU=100 * float(iou[k]),
                isthing=bool(things[k]))
            if things[k]:
                entry.update(Acc=100 * float(acc[k]), Prec=100 * float(prec[k]))
            per_class[name] = entry
        results['per_class'] = per_class
    return results


__all__ = [
    'VOID', 'rgb2id', 'id2rgb', 'read_panoptic_png', 'parse_categories', 'PanopticStats', 'IdRuns',
    'segment_overlaps', 'panoptic_stats_single', 'semantic_iou', 'summarize_panoptic_stats'
]
