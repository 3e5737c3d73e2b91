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
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from syndr_lightning.utils.errors import ConfigError, DatasetError, SyndrError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "image_size",
    "max_image_pixels",
    "pil_to_rgb",
    "read_rgb",
    "set_max_image_pixels",
    "verify_image",
]

#: File suffixes read as images wherever a folder is listed (one list for the package).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS_ENV = "SYNDR_MAX_IMAGE_PIXELS"
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
    path: str | os.PathLike[str], *, error: type[SyndrError] = DatasetError
) -> tuple[int, int]:
    """``(height, width)`` of the decoded image (EXIF orientation applied), from the header."""
    with _opened(path, error, "image") as img:
        w, h = _oriented_size(img)
        return h, w


def verify_image(path: str | os.PathLike[str], *, full: bool = True) -> str | None:
    """Why ``path`` cannot be used as an image (one line), or None when it can.

    ``full`` decodes every pixel (finds truncated and corrupt files); otherwise only the
    header and the pixel limit are checked.
    """
    try:
        if full:
            read_rgb(path)
        else:
            h, w = image_size(path)
            if h < 1 or w < 1:
                return "empty image"
    except SyndrError as exc:
        return str(exc)
    return None
