# Copyright (c) mmibs contributors. All rights reserved.
"""Atomic file writes: a reader sees the old file (or folder) or the new one, never a part.

Everything is first written next to its destination (same file system, so ``os.replace`` and
``os.rename`` are atomic), then moved into place; on an error the partial output is removed.
Used by the dataset converters (json files, PNG folders), the model converters and the opt-in
atomic checkpoint writes (:class:`mmibs.engine.AtomicCheckpointHook`). Python's standard library
has no atomic write and mmengine's file backends write in place, hence this small module.
"""
import contextlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Iterator, Optional

__all__ = ['atomic_open', 'atomic_output_dir', 'atomic_write_json']


def current_umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb', encoding: Optional[str] = None) -> Iterator:
    """Open a temporary file next to ``path`` that replaces ``path`` when the block succeeds.

    The data are flushed and ``fsync`` ed before ``os.replace`` (atomic on POSIX and Windows);
    on an exception the temporary file is removed and ``path`` is left as it was. The new file
    gets the permissions a plain ``open`` would give (``mkstemp`` makes 0600 files).

    Args:
        path (str): Destination file; its folder is created.
        mode (str): ``'wb'`` or ``'w'``. Defaults to 'wb'.
        encoding (str, optional): Text encoding for ``'w'``. Defaults to None.

    Yields:
        The open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open: mode must be "w" or "wb", got {mode!r} for {path}')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Persist the rename itself (POSIX); a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_json(obj: object, path: str) -> None:
    """Write ``obj`` as json to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, 'w') as f:
        json.dump(obj, f)


@contextlib.contextmanager
def atomic_output_dir(path: str) -> Iterator[str]:
    """Yield a temporary folder that replaces the folder ``path`` when the block succeeds.

    An existing ``path`` is moved aside first and deleted only after the new folder is in place;
    on an exception the temporary folder is removed and ``path`` is left as it was.

    Args:
        path (str): Destination folder; its parent is created.

    Yields:
        str: The temporary folder to fill.
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
