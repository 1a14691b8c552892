# Copyright (c) mmibs contributors. All rights reserved.
"""Pixel counts behind thing accuracy and precision (Acc_th, Prec_th); see ``docs/metrics.md``.

The IBS paper reports a pixel accuracy and a pixel precision of thing segments to measure mask
*confusion*: one predicted mask spread over two cars, or one car split between two predictions.
PQ barely moves when the IoU stays above 0.5, these do. mmibs fixes the definition below
(``docs/metrics.md``). For each thing category c, per image:

- ``TP_c = sum_g |g & p(g)|`` over the pairs of the pairing below;
- ``FN_c = sum_g |g| - |g & p(g)|`` over non-crowd ground-truth segments g of c (overlap 0 when g is
  unpaired): the part of each car its prediction misses;
- ``FP_c = sum_p |p minus (void | crowd regions of c)| - |p & g(p)|`` over predicted segments p
  of c: the part of each prediction outside its car, void and same-class crowd pixels left out as PQ
  leaves them out.

Two pairings (``matching``):

- ``'pq'``: the PQ matching (same category, non-crowd ground truth, IoU > 0.5 with the prediction's
  void pixels left out of the union). It is one-to-one, so TP seen from the ground truth and seen
  from the predictions are the same number.
- ``'max_overlap'``: every non-crowd ground-truth segment is paired with the same-class prediction
  that overlaps it most (for TP/FN) and every prediction with the same-class non-crowd
  ground-truth segment it overlaps most (for TP/FP). Not one-to-one, so the two TP differ; a merged
  prediction then still loses precision, and a split car still loses accuracy, but a prediction
  with IoU below 0.5 keeps the pixels it got right.

Both TPs are kept (``pix_tp_gt``, ``pix_tp_pred``); Acc uses the first and Prec the second.

Shape shorthand: G ground-truth segments, P predicted segments, C categories.
"""
from typing import Tuple

import numpy as np

from mmibs.utils.checks import check_choice

MATCHING_MODES = ('pq', 'max_overlap')


def sum_by_category(values: np.ndarray, category: np.ndarray, num_categories: int) -> np.ndarray:
    """Sum integer ``values`` per category index.

    ``np.bincount`` with weights returns float64, exact for integers below 2**53 (far beyond any
    pixel count), so the result is cast back to int64 without loss.

    Args:
        values (np.ndarray): Integer values, shape (N, ).
        category (np.ndarray): Category index of each value in [0, C), shape (N, ).
        num_categories (int): C.

    Returns:
        np.ndarray: int64 sums, shape (C, ).
    """
    if values.size == 0:
        return np.zeros(num_categories, dtype=np.int64)
    sums = np.bincount(category, weights=values.astype(np.float64), minlength=num_categories)
    return np.rint(sums).astype(np.int64)


def thing_pixel_counts(overlaps: np.ndarray,
                       gt_pixels: np.ndarray,
                       gt_category: np.ndarray,
                       gt_crowd: np.ndarray,
                       pred_pixels: np.ndarray,
                       pred_category: np.ndarray,
                       pq_matched: np.ndarray,
                       category_isthing: np.ndarray,
                       matching: str = 'pq') -> Tuple[np.ndarray, ...]:
    """TP/FN/FP pixel counts of thing categories for one image (module docstring).

    Args:
        overlaps (np.ndarray): ``|g & p|`` of every ground-truth segment g and predicted segment p,
            int, shape (G, P).
        gt_pixels (np.ndarray): ``|g|`` counted in the PNG, int, shape (G, ).
        gt_category (np.ndarray): Category index of each ground-truth segment, shape (G, ).
        gt_crowd (np.ndarray): Crowd flag of each ground-truth segment, bool, shape (G, ).
        pred_pixels (np.ndarray): ``|p minus (void | crowd regions of p's category)|``, int,
            shape (P, ).
        pred_category (np.ndarray): Category index of each predicted segment, shape (P, ).
        pq_matched (np.ndarray): The PQ matching, bool, shape (G, P); used when matching='pq'.
        category_isthing (np.ndarray): Thing flag of each category, bool, shape (C, ).
        matching (str): 'pq' or 'max_overlap' (module docstring). Defaults to 'pq'.

    Returns:
        tuple[np.ndarray]: ``pix_tp_gt, pix_fn, pix_tp_pred, pix_fp``, int64, each shape (C, ),
        zero for stuff categories.
    """
    check_choice('thing_pixel_counts', 'matching', matching, MATCHING_MODES)
    num_categories = category_isthing.shape[0]
    # Crowd and stuff ground truth never pair: only non-crowd thing segments are instances.
    gt_keep = ~gt_crowd & category_isthing[gt_category]
    pred_keep = category_isthing[pred_category]
    # shape (G, P): pairs allowed by either pairing (same category, non-crowd thing gt).
    allowed = (gt_category[:, None] == pred_category[None, :]) & gt_keep[:, None]
    if matching == 'pq':
        # one-to-one: each row and column has at most one matched pair
        paired = np.where(pq_matched & allowed, overlaps, 0)
        gt_hit = paired.sum(axis=1)  # shape (G, )
        pred_hit = paired.sum(axis=0)  # shape (P, )
    else:
        candidates = np.where(allowed, overlaps, 0)  # shape (G, P)
        gt_hit = candidates.max(axis=1, initial=0)  # best same-class prediction of each g
        pred_hit = candidates.max(axis=0, initial=0)  # best same-class gt of each p

    pix_tp_gt = sum_by_category(gt_hit[gt_keep], gt_category[gt_keep], num_categories)
    pix_fn = sum_by_category((gt_pixels - gt_hit)[gt_keep], gt_category[gt_keep], num_categories)
    pix_tp_pred = sum_by_category(pred_hit[pred_keep], pred_category[pred_keep], num_categories)
    pix_fp = sum_by_category((pred_pixels - pred_hit)[pred_keep], pred_category[pred_keep],
                             num_categories)
    return pix_tp_gt, pix_fn, pix_tp_pred, pix_fp
