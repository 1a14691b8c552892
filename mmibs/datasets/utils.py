# Copyright (c) mmibs contributors. All rights reserved.
"""Small helpers shared by the datasets and the converters: category order (and the json reader)."""
from typing import List

from mmibs.utils.fileio import load_json  # noqa: F401  (re-exported for the datasets)


def things_first(categories: List[dict]) -> List[dict]:
    """COCO categories reordered things first, then stuff, each by id (stable).

    Args:
        categories (list[dict]): Categories with ``id`` and ``isthing``.

    Returns:
        list[dict]: The same dicts, reordered.
    """
    ordered = sorted(categories, key=lambda c: c['id'])
    return [c for c in ordered if c['isthing']] + [c for c in ordered if not c['isthing']]
