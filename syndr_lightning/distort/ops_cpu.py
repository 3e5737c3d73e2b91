"""Per-image CPU implementations: codecs and sequential types (6, 9, 10, 15, 20, 22).

Each function maps ``x`` (``H x W x 3`` float in [0,1], already min-max stretched), the
level's parameter and a numpy ``Generator`` to the distorted image, before the final
min-max. Codecs see the image as 8-bit, as MATLAB's ``imwrite`` does.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from syndr_lightning.utils.errors import InputError

CpuOp = Callable[..., np.ndarray]


def to_uint8(x: np.ndarray) -> np.ndarray:
    """``round(255 x)`` as uint8 (x clipped to [0,1] first)."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


# ----------------------------------------------------------------------------- 6 colour quantisation
def color_quantization(
    x: np.ndarray, colors: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Type 6: ``colors``-colour palette by median cut, mapped with Floyd-Steinberg dithering.

    Approximates MATLAB's ``rgb2ind`` (minimum-variance quantisation + dithering): the
    palette comes from Pillow's median cut, not minimum variance (a documented difference).
    """
    img = Image.fromarray(to_uint8(x), mode="RGB")
    palette = img.quantize(
        colors=int(colors), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    dithered = img.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(dithered.convert("RGB"), dtype=np.float32) / np.float32(255.0)


# ----------------------------------------------------------------------------- 9, 10 codecs
# MATLAB imwrite's JPEG 2000 defaults (its documentation): Mode 'lossy', ReductionLevels 4,
# QualityLayers 1, ProgressionOrder 'LRCP', TileSize = the whole image.
J2K_REDUCTION_LEVELS = 4
J2K_PROGRESSION = "LRCP"
J2K_CODEBLOCK = (64, 64)


def encode_jpeg2000(img_u8: np.ndarray, ratio: float) -> bytes:
    """J2K codestream as ``imwrite(img, f, 'CompressionRatio', ratio)`` with MATLAB's defaults.

    Lossy mode (irreversible 9/7 wavelet), 4 wavelet decomposition levels (5 resolutions;
    fewer on images under 16 px, which cannot hold 4), one quality layer at the target
    ratio (uncompressed ``H x W x 3`` bytes over codestream bytes), LRCP progression, one
    tile, 64x64 code blocks, and the irreversible colour transform on RGB: MATLAB
    documents no colour-transform option, and the ICT is the JPEG 2000 transform of the
    lossy 9/7 path (and its codec's default for three equal-sized components).
    """
    levels = max(0, min(J2K_REDUCTION_LEVELS, int(math.log2(max(1, min(img_u8.shape[:2]))))))
    buf = io.BytesIO()
    Image.fromarray(img_u8, mode="RGB").save(
        buf,
        format="JPEG2000",
        quality_mode="rates",
        quality_layers=[float(ratio)],
        irreversible=True,
        mct=1,
        num_resolutions=levels + 1,
        progression=J2K_PROGRESSION,
        codeblock_size=J2K_CODEBLOCK,
        no_jp2=True,
    )
    return buf.getvalue()


def encode_jpeg(img_u8: np.ndarray, quality: float) -> bytes:
    """Baseline JPEG at IJG ``quality`` with 4:2:0 chroma subsampling (subsampling unverified)."""
    buf = io.BytesIO()
    Image.fromarray(img_u8, mode="RGB").save(
        buf, format="JPEG", quality=int(quality), subsampling="4:2:0"
    )
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255.0)


def jpeg2000(x: np.ndarray, ratio: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Type 9: ``imwrite`` as JPEG 2000 at compression ratio ``ratio``, then ``imread``
    (see :func:`encode_jpeg2000`)."""
    return _decode(encode_jpeg2000(to_uint8(x), ratio))


def jpeg(x: np.ndarray, quality: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Type 10: ``imwrite(x, f, 'jpg', 'Quality', quality)``, then ``imread``."""
    return _decode(encode_jpeg(to_uint8(x), quality))


# ----------------------------------------------------------------------------- 15 denoise
def denoise(
    x: np.ndarray,
    var: float,
    rng: np.random.Generator,
    denoiser: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Type 15: add N(0, var) (clipped), then denoise each channel.

    KADID used MATLAB's pretrained DnCNN; by default we use a classical denoiser instead
    (a documented difference): skimage's fast non-local means per channel, 5x5 patches,
    search distance 3, noise sigma known, filter strength ``h = 0.8 sigma``.
    ``denoiser`` (e.g. a loaded DnCNN, see :mod:`syndr_lightning.distort.dncnn`) maps the
    noisy ``H x W x 3`` image to the denoised one, channel by channel.
    """
    sigma = math.sqrt(var)
    noisy = np.clip(x + rng.standard_normal(x.shape) * sigma, 0.0, 1.0)
    if denoiser is not None:
        return np.asarray(denoiser(noisy), dtype=np.float64)
    from skimage.restoration import denoise_nl_means

    channels = [
        denoise_nl_means(
            noisy[..., c],
            h=0.8 * sigma,
            sigma=sigma,
            patch_size=5,
            patch_distance=3,
            fast_mode=True,
        )
        for c in range(noisy.shape[2])
    ]
    return np.stack(channels, axis=-1)


# ----------------------------------------------------------------------------- 20 patches
def non_eccentricity_patch(x: np.ndarray, patches: float, rng: np.random.Generator) -> np.ndarray:
    """Type 20: ``patches`` times, copy a 16x16 patch and paste it within +-8 px, in place.

    Sources lie at least 16 px from the border (less on images too small for that);
    destinations are clipped to the image.
    """
    out = x.copy()
    h, w = out.shape[:2]
    size = min(16, h, w)
    for _ in range(int(patches)):
        my = min(16, (h - size) // 2)
        mx = min(16, (w - size) // 2)
        sy = int(rng.integers(my, h - size - my + 1))
        sx = int(rng.integers(mx, w - size - mx + 1))
        dy = int(np.clip(sy + rng.integers(-8, 9), 0, h - size))
        dx = int(np.clip(sx + rng.integers(-8, 9), 0, w - size))
        out[dy : dy + size, dx : dx + size] = out[sy : sy + size, sx : sx + size].copy()
    return out


# ----------------------------------------------------------------------------- 22 quantisation
def multi_otsu_thresholds(hist: np.ndarray, n_thresholds: int) -> np.ndarray:
    """Exact multi-Otsu thresholds (bin indices) of a histogram by dynamic programming.

    Maximises the between-class variance ``sum_k w_k mu_k^2`` over all splits into
    ``n_thresholds + 1`` non-empty bin ranges; returns the last bin of every class but the
    top one. O(classes x bins^2) time, O(bins^2) memory (bins, not pixels).
    MATLAB's ``multithresh`` searches the same criterion locally (fminsearch); an exact
    optimum is our documented choice.
    """
    p = np.asarray(hist, dtype=np.float64)
    nb = p.size
    k = int(n_thresholds) + 1
    if k > nb:
        raise InputError(
            f"multi-Otsu needs at most {nb - 1} thresholds for {nb} bins, got {n_thresholds}"
        )
    c0 = np.concatenate(([0.0], np.cumsum(p)))
    c1 = np.concatenate(([0.0], np.cumsum(p * np.arange(nb))))
    # score[i, j]: class covering bins i..j-1 (i < j)
    w = c0[None, :] - c0[:, None]
    m = c1[None, :] - c1[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(w > 0, m**2 / np.where(w > 0, w, 1.0), 0.0)
    valid = np.arange(nb + 1)[None, :] > np.arange(nb + 1)[:, None]
    score = np.where(valid, score, -np.inf)
    best = score[0].copy()  # best[j]: one class over bins 0..j-1
    back = []
    for _ in range(1, k):
        cand = best[:, None] + score  # [i, j]: best up to i, then class i..j-1
        arg = np.argmax(cand, axis=0)
        best = cand[arg, np.arange(nb + 1)]
        back.append(arg)
    cuts = []
    j = nb
    for arg in reversed(back):
        j = int(arg[j])
        cuts.append(j)
    return np.array(sorted(c - 1 for c in cuts), dtype=np.int64)


def quantization(
    x: np.ndarray, n_thresholds: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Type 22: MATLAB ``multithresh`` (multi-Otsu, solved exactly) over all RGB values
    pooled (256 bins); ``x <= t1 -> 0``,
    ``t(k-1) < x <= t(k) -> t(k)``, ``x > tN -> 1`` (thresholds as values ``bin / 255``).

    Values are compared as bins (``round(255 x)``), so float32 and float64 inputs give
    the same classes even for values that sit exactly on a threshold.
    """
    bins = np.round(np.clip(x, 0, 1) * 255).astype(np.int64)
    hist = np.bincount(bins.ravel(), minlength=256).astype(np.float64)
    n = int(n_thresholds)
    occupied = int(np.count_nonzero(hist))
    if occupied <= n:
        # fewer grey values than classes: every value is already its own level
        return x.copy()
    t_bins = multi_otsu_thresholds(hist, n)
    t = t_bins / 255.0
    values = np.concatenate(([0.0], t[1:], [1.0]))
    return values[np.searchsorted(t_bins, bins, side="left")]


CPU_OPS: dict[int, CpuOp] = {
    6: color_quantization,
    9: jpeg2000,
    10: jpeg,
    15: denoise,
    20: non_eccentricity_patch,
    22: quantization,
}
