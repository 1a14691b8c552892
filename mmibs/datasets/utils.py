# Copyright (c) mmibs contributors. All rights reserved.
"""Small helpers shared by the datasets and the converters: json reading, category order."""
from typing import List, Optional

from mmengine.fileio import exists, load


def load_json(path: str, backend_args: Optional[dict] = None):
    """Read a json file through mmengine's file backends; errors name the file.

    Args:
        path (str): Local path or backend URI.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.

    Returns:
        The decoded json (usually a dict).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is not valid json.
    """
    if not exists(path, backend_args=backend_args):
        raise FileNotFoundError(f'{path}: file not found')
    try:
        return load(path, file_format='json', backend_args=backend_args)
    except ValueError as err:  # json.JSONDecodeError is a ValueError
        raise ValueError(f'{path}: not a valid json file ({err})') from err


def things_first(categories: List[dict]) -> List[dict]:
    """COCO categories reordered things first, then stuff, each by id (stable).

    Args:
        categories (list[dict]): Categories with ``id`` and ``isthing``.

    Returns:
        list[dict]: The same dicts, reordered.
    """
    ordered = sorted(categories, key=lambda c: c['id'])
    return [c for c in ordered if c['isthing']] + [c for c in ordered if not c['isthing']]
