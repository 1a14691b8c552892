# Copyright (c) mmibs contributors. All rights reserved.
"""The one json reader of mmibs (datasets, converters, evaluation): mmengine's file backends, with
errors that name the file."""
from typing import Optional

from mmengine.fileio import exists, load

__all__ = ['load_json']


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
