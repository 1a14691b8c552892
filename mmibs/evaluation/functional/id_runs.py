# Copyright (c) mmibs contributors. All rights reserved.
"""Id maps as runs of equal ids (run-length encoding), the form the evaluation works on."""
from typing import Optional, Tuple

import numpy as np


class IdRuns:
    """An id map stored as runs of equal ids along its row-major pixels (run-length encoding).

    A panoptic map is a few flat regions, so a 1024x2048 map has some 10**4 - 10**5 runs, 12
    bytes each (int64 start, uint32 id for RGB-encoded ids): a fraction of the map's 8 MB.
    :class:`~mmibs.evaluation.PanopticQualityMetric` keeps the ground truth of validation images in
    this form between evaluations, and :func:`segment_overlaps` accepts it in place of the map.

    Args:
        shape (tuple[int, int]): (H, W).
        starts (np.ndarray): int64 index of the first pixel of each run, increasing, ``starts[0]
            == 0``, shape (R, ).
        values (np.ndarray): The id of each run, shape (R, ).
    """

    def __init__(self, shape: Tuple[int, int], starts: np.ndarray, values: np.ndarray) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.starts = starts
        self.values = values

    @classmethod
    def from_map(cls, id_map: np.ndarray, value_mask: Optional[int] = None) -> 'IdRuns':
        """Encode an id map.

        Args:
            id_map (np.ndarray): Ids, shape (H, W).
            value_mask (int, optional): Bits of the ids to keep, applied to the run values only
                (e.g. ``0xFFFFFF`` for RGBA bytes read as uint32 whose alpha byte is constant).
                Defaults to None (all bits).

        Returns:
            IdRuns: The runs.
        """
        flat = id_map.ravel()
        if flat.size == 0:
            return cls(id_map.shape, np.zeros(0, np.int64), flat[:0].copy())
        starts = np.flatnonzero(changes(flat))
        values = flat[starts]
        if value_mask is not None:
            values &= value_mask
        return cls(id_map.shape, starts, values)

    def to_map(self) -> np.ndarray:
        """Decode into the id map, shape (H, W)."""
        size = self.shape[0] * self.shape[1]
        lengths = np.diff(self.starts, append=size)
        return np.repeat(self.values, lengths).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return self.starts.nbytes + self.values.nbytes

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(shape={self.shape}, runs={len(self.starts)})'


def changes(flat: np.ndarray) -> np.ndarray:
    """``True`` at pixel 0 and wherever the id differs from the previous pixel, shape (N, )."""
    change = np.empty(flat.shape, dtype=bool)
    change[:1] = True
    np.not_equal(flat[1:], flat[:-1], out=change[1:])
    return change


__all__ = ['IdRuns', 'changes']
