# Copyright (c) mmibs contributors. All rights reserved.
"""Reading COCO-panoptic PNGs (``id = R + 256 G + 256**2 B``) as id maps, fast.

Decoding the two PNGs of an image pair is most of the time of an evaluation from files. A panoptic
PNG is a few flat colours, so its zlib stream is long back-references: zlib's inflate (what OpenCV,
PIL, libpng and libspng use) spends about 12 ms on a 1024x2048 map where libdeflate or zlib-ng
need 0.3 ms. The Rust ``png`` crate (with ``fdeflate``; the decoder hotcoco uses too) decodes the
whole PNG in about 2.4 ms. mmibs therefore decodes 8-bit RGB, RGBA and palette PNGs with
``imgread`` (a binding of the Rust ``image``/``png`` crates that releases the GIL) when it is
installed, and everything else (16-bit, gray, or no ``imgread``) with OpenCV. Both give the same
pixels, hence the same ids and the same metrics
(``tests/test_evaluation/test_functional/test_panoptic_png.py``).

Measured on 1024x2048 panoptic PNGs written by PIL, one core, best of 5 (ms per PNG, decoded
pixels): OpenCV 17.5, PIL 19.4, pyspng 14.4, imagecodecs (libpng) 14.1, pywuffs 12.3, pyvips 7.0,
imgread 2.4.
"""
import os
import os.path as osp
import struct
import threading
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .id_runs import IdRuns

try:  # optional fast decoder (requirements/runtime.txt on Linux x86_64 / macOS)
    import imgread
except ImportError:  # pragma: no cover - depends on the platform
    imgread = None

#: Decoder names accepted by :func:`read_panoptic_png`; 'auto' prefers imgread, falls back to cv2.
PNG_DECODERS = ('auto', 'imgread', 'cv2')

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# IHDR colour types that imgread returns losslessly as 8-bit RGB: RGB, palette, RGBA (alpha
# dropped, as the id ignores it). Gray (0, 4) would be replicated into 3 channels, so cv2 reads it.
_IMGREAD_COLOR_TYPES = (2, 3, 6)


def png_decoder_available(decoder: str) -> bool:
    """Whether a decoder of :data:`PNG_DECODERS` can be used here.

    Args:
        decoder (str): 'auto', 'imgread' or 'cv2'.

    Returns:
        bool: True for 'auto' and 'cv2'; for 'imgread' whether the package imports.
    """
    if decoder not in PNG_DECODERS:
        raise ValueError(f'png decoder must be one of {PNG_DECODERS}, got {decoder!r}')
    return decoder != 'imgread' or imgread is not None


def png_header(data: bytes) -> Optional[Tuple[int, int, int, int]]:
    """Width, height, bit depth and colour type from a PNG's IHDR, or None if not a PNG.

    Args:
        data (bytes): The encoded file (at least its first 26 bytes).

    Returns:
        tuple[int, int, int, int] | None: ``(width, height, bit_depth, color_type)``.
    """
    if len(data) < 26 or data[:8] != _PNG_SIGNATURE or data[12:16] != b'IHDR':
        return None
    return struct.unpack('>IIBB', data[16:26])


# RGBA buffers of read_panoptic_runs, kept between calls: a fresh 8 MB array per image costs
# thousands of page faults (about as much as the conversion itself). One per concurrent reader;
# at most as many kept as there are cores.
_free_buffers: List[np.ndarray] = []
_buffers_lock = threading.Lock()


def _take_buffer(height: int, width: int) -> np.ndarray:
    with _buffers_lock:
        for k, buffer in enumerate(_free_buffers):
            if buffer.shape[:2] == (height, width):
                return _free_buffers.pop(k)
    return np.empty((height, width, 4), dtype=np.uint8)


def _give_back(buffer: np.ndarray) -> None:
    with _buffers_lock:
        if len(_free_buffers) >= (os.cpu_count() or 1):
            _free_buffers.pop(0)  # the oldest (e.g. of another image size) goes
        _free_buffers.append(buffer)


def _decode(data: bytes, decoder: str, name: str, reuse: bool = False) -> Tuple[np.ndarray, bool]:
    """Decode to ``(map, is_rgba)``: RGBA bytes as uint32 (alpha not masked yet) or gray ids.

    With ``reuse`` the RGBA bytes go to a buffer of :func:`_take_buffer`, which the caller gives
    back (:func:`_give_back`) when done with the map.
    """
    if not png_decoder_available(decoder):
        raise ImportError('read_panoptic_png: decoder="imgread" needs the imgread package '
                          '(pip install imgread; Linux x86_64 and macOS wheels), or use "cv2"')
    header = png_header(data)
    image, code, imgread_error = None, None, None
    if (decoder != 'cv2' and imgread is not None and header is not None and header[2] == 8
            and header[3] in _IMGREAD_COLOR_TYPES):
        try:
            image = imgread.load_numpy_from_bytes(data, backend='image', limits='unlimited')
            code = cv2.COLOR_RGB2RGBA
        except (RuntimeError, ValueError) as error:
            imgread_error = error  # corrupt or unusual: OpenCV reads it or names the file
    if image is None:
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:  # e.g. an empty buffer
            image = None
        if image is None:
            reason = f'imgread: {imgread_error}' if imgread_error else 'not an image OpenCV reads'
            raise ValueError(f'read_panoptic_png: cannot decode {name} ({reason})')
        if image.ndim == 2:
            return image, False
        if image.dtype != np.uint8 or image.shape[2] not in (3, 4):
            raise ValueError(f'read_panoptic_png: {name} is not an 8-bit RGB(A) PNG '
                             f'({image.dtype}, {image.shape[2]} channels)')
        code = cv2.COLOR_BGR2RGBA if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
    rgba = cv2.cvtColor(image, code, dst=_take_buffer(*image.shape[:2]) if reuse else None)
    return rgba.view('<u4')[..., 0], True  # shape (H, W, 4) -> (H, W)


def decode_panoptic_png(data: bytes, decoder: str = 'auto', name: str = '<bytes>') -> np.ndarray:
    """Decode an encoded COCO-panoptic PNG into ids.

    An RGB(A) or palette PNG gives ``R + 256 G + 256**2 B`` (alpha ignored); a single-channel PNG
    (ids saved as 8/16-bit gray) is returned as it is. The RGB pixels become RGBA bytes with one
    ``cvtColor`` (a SIMD shuffle) and are read as little-endian uint32 masked to 24 bits: no
    per-channel uint32 temporaries as in panopticapi's ``rgb2id``.

    Args:
        data (bytes): The encoded file.
        decoder (str): 'auto' (imgread for 8-bit RGB / RGBA / palette PNGs when installed, else
            cv2), 'imgread' (an error if not installed; other PNGs still go to cv2) or 'cv2'.
            Defaults to 'auto'.
        name (str): Named in error messages. Defaults to '<bytes>'.

    Returns:
        np.ndarray: uint32 (colour) or uint8/uint16 (gray) ids, shape (H, W).
    """
    ids, is_rgba = _decode(data, decoder, name, reuse=False)
    if is_rgba:
        np.bitwise_and(ids, 0xFFFFFF, out=ids)  # drop the alpha byte
    return ids


def _read_bytes(path: str, backend_args: Optional[dict]) -> bytes:
    if backend_args is None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'read_panoptic_png: cannot read {path}')
        with open(path, 'rb') as f:
            return f.read()
    from mmengine.fileio import get
    return get(path, backend_args=backend_args)


def read_panoptic_png(path: str,
                      backend_args: Optional[dict] = None,
                      decoder: str = 'auto') -> np.ndarray:
    """Read a COCO-panoptic PNG as an id map (:func:`decode_panoptic_png`).

    Args:
        path (str): PNG file.
        backend_args (dict, optional): mmengine file backend arguments; None reads the local file
            directly. Defaults to None.
        decoder (str): 'auto', 'imgread' or 'cv2' (:func:`decode_panoptic_png`).
            Defaults to 'auto'.

    Returns:
        np.ndarray: uint32 (RGB) or uint8/uint16 (gray) ids, shape (H, W).
    """
    return decode_panoptic_png(_read_bytes(path, backend_args), decoder, name=path)


def read_panoptic_runs(path: str,
                       backend_args: Optional[dict] = None,
                       decoder: str = 'auto') -> IdRuns:
    """Read a COCO-panoptic PNG straight into :class:`IdRuns` (the evaluation's form).

    Same ids as :func:`read_panoptic_png`, without keeping a full-size id map: the RGBA bytes go
    to a buffer reused across calls, runs are found on them, and only the run values are masked
    to 24 bits (the alpha byte is the same on every pixel, so it makes no run boundary).

    Args:
        path (str): PNG file.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
        decoder (str): 'auto', 'imgread' or 'cv2'. Defaults to 'auto'.

    Returns:
        IdRuns: The id map as runs.
    """
    words, is_rgba = _decode(_read_bytes(path, backend_args), decoder, path, reuse=True)
    if not is_rgba:
        return IdRuns.from_map(words)
    try:
        return IdRuns.from_map(words, value_mask=0xFFFFFF)
    finally:
        _give_back(words.base if words.base is not None else words)


__all__ = [
    'PNG_DECODERS', 'png_decoder_available', 'png_header', 'decode_panoptic_png',
    'read_panoptic_png', 'read_panoptic_runs'
]
