# Copyright (c) mmibs contributors. All rights reserved.
"""Atomic outputs for the converters: a reader never sees a half-written json or PNG folder.

Everything is first written next to its destination (same file system, so ``os.replace`` and
``os.rename`` are atomic), then moved into place; on an error the partial output is removed.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator

from mmibs.utils.atomic_io import atomic_open, current_umask


def atomic_write_json(obj: object, path: str) -> None:
    """Write ``obj`` as json to ``path`` through a temporary file and ``os.replace``."""
    with atomic_open(path, 'w') as f:
        json.dump(obj, f)


@contextmanager
def atomic_output_dir(path: str) -> Iterator[str]:
    """Yield a temporary folder that replaces ``path`` when the block succeeds.

    An existing ``path`` is moved aside first and deleted only after the new folder is in place.
    """
    parent = osp.dirname(osp.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700 folders
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if osp.exists(path):
        old = tempfile.mkdtemp(dir=parent, prefix=f'.{osp.basename(path)}.', suffix='.old')
        os.rmdir(old)
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
