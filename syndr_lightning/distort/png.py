"""A minimal, fast 8-bit RGB PNG encoder (the generator's output format).

Pillow's encoder tries every PNG row filter per row; the distorted images compress about as
well with the "Up" filter on every row (computed in one numpy subtraction) and zlib level 1
with the run-length strategy (``Z_RLE``: matches only at distance 1, no string search), at
well under half the cost: on a 512x384 photo ~7 ms and 324 KB against ~9 ms and 352 KB for
level 1's default strategy. Output is a standard PNG that any reader decodes exactly.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from syndr_lightning.utils.errors import InputError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png_rgb(img: np.ndarray, level: int = 1, strategy: int = zlib.Z_RLE) -> bytes:
    """Encode an ``H x W x 3`` uint8 array as PNG (colour type 2, 8 bit, Up filter),
    compressed with zlib ``level`` and ``strategy``."""
    arr = np.asarray(img)
    if (
        arr.dtype != np.uint8
        or arr.ndim != 3
        or arr.shape[2] != 3
        or arr.shape[0] < 1
        or arr.shape[1] < 1
    ):
        raise InputError(
            f"PNG output needs a non-empty H x W x 3 uint8 array, got {arr.dtype} {arr.shape}"
        )
    h, w = arr.shape[:2]
    rows = arr.reshape(h, w * 3)
    filtered = np.empty((h, w * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[0, 1:] = rows[0]  # the row above the first is zero
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 wraps mod 256, as PNG says
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    packer = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    idat = packer.compress(filtered.tobytes()) + packer.flush()
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", idat),
            _chunk(b"IEND", b""),
        )
    )
