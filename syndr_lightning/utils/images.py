"""The one place where image files are opened: RGB, EXIF orientation, bit depth, pixel limit.

Every loader (training, image cache, DRCDown crops, reference features, GenDist,
``syndr predict``, ``syndr data check``) reads files through :func:`read_rgb`, so they
all see the same pixels:

* EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), as viewers do;
* 16-bit images (``I;16*``, and ``I`` holding 0..65535) are scaled to 8 bits
  (``round(v * 255 / 65535)``) instead of being clipped at 255;
* an image with more pixels than the limit (default: the size Pillow itself refuses,
  ``2 * PIL.Image.MAX_IMAGE_PIXELS``) is refused in one line before it is decoded. The
  limit is ``$SYNDR_MAX_IMAGE_PIXELS`` (read in every process, so DataLoader workers see
  it), set by :func:`set_max_image_pixels` (``max_image_pixels`` in the training config,
  ``--max-pixels`` on the command line).
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from syndr_lightning.utils.errors import ConfigError, DatasetError, SyndrError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "MIN_IMAGE_SIDE",
    "image_size",
    "max_image_pixels",
    "pil_to_rgb",
    "read_rgb",
    "set_max_image_pixels",
    "verify_checksums",
    "verify_image",
]

#: File suffixes read as images wherever a folder is listed (one list for the package).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS_ENV = "SYNDR_MAX_IMAGE_PIXELS"
#: Smallest side of an image that is trained on, evaluated or scored.
MIN_IMAGE_SIDE = 8
#: Pillow raises DecompressionBombError above twice its MAX_IMAGE_PIXELS (89,478,485).
DEFAULT_MAX_PIXELS = 2 * 89_478_485
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError)
_ORIENTATION = 0x0112


def max_image_pixels() -> int:
    """The pixel limit of this process (``$SYNDR_MAX_IMAGE_PIXELS`` or the default)."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{MAX_PIXELS_ENV}={raw!r} is not a positive integer; set it to the largest "
            f"number of pixels (width x height) an image may have, e.g. {DEFAULT_MAX_PIXELS}"
        )
    return value


def set_max_image_pixels(limit: int | None) -> None:
    """Set the pixel limit for this process and the processes it starts (None: default)."""
    if limit is None:
        os.environ.pop(MAX_PIXELS_ENV, None)
        return
    try:
        value = int(limit)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise ConfigError(
            f"max_image_pixels={limit!r} must be a positive integer (width x height), e.g. "
            f"{DEFAULT_MAX_PIXELS}"
        )
    os.environ[MAX_PIXELS_ENV] = str(value)


def _allow_pillow(limit: int) -> None:
    """Let Pillow open what our (larger) limit allows; our own check stays in force."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and 2 * current < limit:
        Image.MAX_IMAGE_PIXELS = limit


def _check_pixels(path: str, size: tuple[int, int], limit: int, error: type[SyndrError]) -> None:
    w, h = size
    if w * h > limit:
        raise error(
            f"image {path!r} is {w}x{h} = {w * h:,} pixels, above the limit of {limit:,} "
            f"(a decompression bomb?); if it is genuine, raise the limit with "
            f"max_image_pixels=N (training), --max-pixels N or ${MAX_PIXELS_ENV}=N"
        )


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) after the EXIF orientation is applied."""
    w, h = img.size
    try:
        orientation = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not stop reading pixels
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """A PIL image -> ``uint8 [H,W,3]`` RGB (EXIF orientation applied, 16 bit scaled)."""
    with contextlib.suppress(Exception):  # malformed EXIF: keep the stored orientation
        img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img)
        if mode == "I" and arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(
                f"32-bit integer pixels outside 0..65535 (found {arr.min()}..{arr.max()}); "
                "convert the image to 8 or 16 bits"
            )
        gray = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1):
            raise ValueError("32-bit float pixels outside 0..1; convert the image to 8 bits")
        gray = np.round(arr * 255.0).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    return np.array(img.convert("RGB"), dtype=np.uint8)


@contextlib.contextmanager
def _opened(
    path: str | os.PathLike[str], error: type[SyndrError], what: str
) -> Iterator[Image.Image]:
    """Open ``path`` under the pixel limit; every failure becomes ``error`` in one line."""
    name = str(path)
    limit = max_image_pixels()
    _allow_pillow(limit)
    try:
        with Image.open(path) as img:
            _check_pixels(name, img.size, limit, error)
            yield img
    except FileNotFoundError:
        raise error(f"{what} {name!r} does not exist; check the path or dataset root") from None
    except Image.DecompressionBombError as exc:
        raise error(
            f"image {name!r} is above the pixel limit ({exc}); raise it with "
            f"max_image_pixels=N, --max-pixels N or ${MAX_PIXELS_ENV}=N if it is genuine"
        ) from None
    except _DECODE_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise error(
            f"cannot decode {what} {name!r}: not a readable image ({type(exc).__name__}: "
            f"{reason}); re-download, re-export or remove the file"
        ) from None


def read_rgb(
    path: str | os.PathLike[str],
    *,
    error: type[SyndrError] = DatasetError,
    what: str = "image",
) -> np.ndarray:
    """Decode ``path`` into ``uint8 [H,W,3]`` RGB; any failure raises ``error`` in one line.

    A missing file, an undecodable or truncated file, and an image above the pixel limit
    are all reported naming the file.
    """
    with _opened(path, error, what) as img:
        return pil_to_rgb(img)


def image_size(
    path: str | os.PathLike[str], *, error: type[SyndrError] = DatasetError, what: str = "image"
) -> tuple[int, int]:
    """``(height, width)`` of the decoded image (EXIF orientation applied), from the header."""
    with _opened(path, error, what) as img:
        w, h = _oriented_size(img)
        return h, w


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: markers without a length


def _png_problem(data: bytes) -> str | None:
    """The first PNG chunk whose CRC-32 is wrong (Pillow does not check IDAT's), or a
    missing IEND; None when every chunk is intact."""
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            return f"PNG chunk {kind.decode('latin-1')!r} at byte {pos} is truncated"
        if zlib.crc32(data[pos + 4 : end]) != int.from_bytes(data[end : end + 4], "big"):
            return (
                f"PNG chunk {kind.decode('latin-1')!r} at byte {pos} fails its CRC check "
                "(the file is corrupt)"
            )
        if kind == b"IEND":
            return None
        pos = end + 4
    return "PNG file ends before its IEND chunk (truncated)"


def _jpeg_problem(data: bytes) -> str | None:
    """A broken JPEG marker structure (what libjpeg reports as warnings and Pillow
    ignores: a segment running past the end, no end-of-image marker); None when sound.

    JPEG has no checksum: damage inside the entropy-coded data that keeps the markers
    intact cannot be found without a reference."""
    pos, n = 2, len(data)
    seen_scan = False
    while pos < n:
        if data[pos] != 0xFF:
            return f"JPEG marker expected at byte {pos}, found 0x{data[pos]:02x} (corrupt)"
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return None if seen_scan else "JPEG file has no image data (no scan)"
        if marker in _JPEG_STANDALONE:
            continue
        if pos + 2 > n:
            break
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > n:
            return f"JPEG segment 0x{marker:02x} at byte {pos - 2} runs past the end (truncated)"
        pos += length
        if marker == 0xDA:  # entropy-coded data up to the next real marker
            seen_scan = True
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return "JPEG file ends inside its image data (truncated)"
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    pos += 2
                    continue
                break
    return "JPEG file has no end-of-image marker (truncated)"


def verify_checksums(path: str | os.PathLike[str]) -> str | None:
    """Why the file's own integrity data reject it (one line), or None.

    PNG: every chunk's CRC-32 and the closing IEND (Pillow skips the CRC of image data,
    so a flipped byte there decodes to wrong pixels); JPEG: the marker structure.
    Other formats carry no checksum and pass.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return f"cannot read image {str(path)!r} ({exc.strerror or exc})"
    if data.startswith(_PNG_SIGNATURE):
        why = _png_problem(data)
    elif data.startswith(b"\xff\xd8"):
        why = _jpeg_problem(data)
    else:
        why = None
    return f"image {str(path)!r}: {why}; re-download, re-export or remove the file" if why else None


def verify_image(path: str | os.PathLike[str], *, full: bool = True) -> str | None:
    """Why ``path`` cannot be used as an image (one line), or None when it can.

    ``full`` decodes every pixel (finds truncated and corrupt files) and verifies the
    file's checksums (:func:`verify_checksums`); otherwise only the header and the pixel
    limit are checked.
    """
    try:
        if full:
            h, w = read_rgb(path).shape[:2]
            why = verify_checksums(path)
            if why is not None:
                return why
        else:
            h, w = image_size(path)
            if h < 1 or w < 1:
                return "empty image"
    except SyndrError as exc:
        return str(exc)
    if min(h, w) < MIN_IMAGE_SIDE:
        return (
            f"image {str(path)!r} is {w}x{h} pixels; at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} "
            "is needed (a crop of it would be a few pixels blown up)"
        )
    return None
