"""Strength of every GenDist type per level, pinned: PSNR to the reference on a fixed image.

``EXPECTED`` holds the PSNR (dB) of each type x level on :func:`band_image` with seed
``derive_seed(0, "band", type, level)``; a later change that moves a type's strength by
more than the tolerance fails here, so drift cannot pass silently. Regenerate the table
(after a deliberate change, with the reason in the commit) with
``python tests/test_distort_bands.py``.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from syndr_lightning.distort import SPECS, derive_seed, distort_batch, distort_image
from syndr_lightning.distort.core import to_uint8_image

TOL_DB = 0.3  # float32 rounding across CPUs moves these by hundredths
TOL_CODEC_DB = 0.6  # libjpeg / OpenJPEG / Pillow's quantiser versions may differ a little
CODEC_TYPES = {6, 9, 10}

# PSNR (dB) to the reference, levels 1..5; inf where the level is an identity
EXPECTED: dict[int, tuple[float, float, float, float, float]] = {
    1: (99.0, 33.01, 25.73, 22.47, 21.15),
    2: (27.71, 24.78, 21.57, 21.18, 21.43),
    3: (99.0, 30.43, 26.67, 24.23, 21.29),
    4: (24.74, 12.96, 10.93, 10.4, 9.82),
    5: (41.46, 39.06, 25.81, 25.85, 25.89),
    6: (19.14, 18.86, 17.95, 17.45, 14.78),
    7: (15.22, 12.45, 11.31, 10.28, 10.09),
    8: (99.0, 14.7, 12.8, 11.03, 10.27),
    9: (30.12, 29.07, 28.03, 22.73, 12.06),
    10: (27.1, 26.93, 26.19, 22.95, 20.58),
    11: (29.99, 27.02, 25.26, 23.1, 20.18),
    12: (34.15, 27.25, 24.21, 21.33, 19.68),
    13: (34.18, 28.19, 25.71, 21.75, 20.36),
    14: (36.05, 29.08, 26.26, 23.24, 19.55),
    15: (26.44, 23.74, 22.37, 20.92, 20.29),
    16: (27.97, 22.0, 16.0, 11.25, 8.27),
    17: (34.16, 28.19, 22.13, 16.11, 10.55),
    18: (21.5, 27.34, 99.0, 25.56, 19.75),
    19: (40.08, 33.87, 27.84, 23.46, 20.94),
    20: (20.28, 19.23, 17.77, 16.28, 16.65),
    21: (31.09, 27.52, 24.5, 23.42, 21.15),
    22: (31.89, 29.36, 27.19, 25.15, 21.86),
    23: (16.99, 13.21, 12.42, 13.66, 11.18),
    24: (22.83, 17.97, 15.6, 13.03, 10.65),
    25: (18.93, 22.0, 26.86, 26.83, 20.84),
}


def band_image(h: int = 96, w: int = 128) -> np.ndarray:
    """A fixed photo-like test image: smooth colour fields, edges, a texture, mild noise."""
    rng = np.random.default_rng(2024)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack(
        [
            0.45 + 0.35 * np.sin(2 * np.pi * (2 * x + 0.5 * y)),
            0.5 + 0.3 * np.cos(2 * np.pi * (1.5 * y - x)),
            0.2 + 0.6 * x * (1 - y),
        ],
        axis=-1,
    )
    img[h // 5 : h // 2, w // 6 : w // 2] = [0.85, 0.3, 0.15]
    stripes = 0.5 + 0.5 * ((np.arange(h - h // 2)[:, None, None] // 3) % 2)
    img[h // 2 :, 2 * w // 3 :] *= stripes  # a fine texture
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0.02, 0.97)
    return np.round(img * 255).astype(np.uint8)


def _mapmm_u8(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float64)
    return np.floor((x - x.min()) / (x.max() - x.min()) * 255 + 0.5).astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else round(float(10 * np.log10(255.0**2 / mse)), 2)


def measure(dist_type: int) -> tuple[float, ...]:
    img = band_image()
    ref = _mapmm_u8(img)
    return tuple(
        _psnr(distort_image(img, dist_type, lv, derive_seed(0, "band", dist_type, lv)), ref)
        for lv in (1, 2, 3, 4, 5)
    )


@pytest.mark.parametrize("dist_type", sorted(SPECS))
def test_strength_per_level_is_pinned(dist_type: int) -> None:
    got = measure(dist_type)
    tol = TOL_CODEC_DB if dist_type in CODEC_TYPES else TOL_DB
    for lv, (g, e) in enumerate(zip(got, EXPECTED[dist_type], strict=True), start=1):
        assert g == pytest.approx(e, abs=tol), (
            f"type {dist_type} level {lv}: PSNR {g} dB, pinned {e} dB; if the change is "
            "deliberate, regenerate EXPECTED (python tests/test_distort_bands.py)"
        )


@pytest.mark.parametrize("dist_type", sorted(SPECS))
def test_single_image_path_equals_batch_path(dist_type: int) -> None:
    # distort_image (tables, numpy filters, fused rounding) against distort_batch (torch)
    img = band_image(48, 64)
    seed = derive_seed(0, "pair", dist_type, 4)
    single = distort_image(img, dist_type, 4, seed).astype(int)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    batch = to_uint8_image(distort_batch(x, dist_type, 4, [seed]))[0].astype(int)
    diff = np.abs(single - batch)
    assert diff.max() <= 1 and diff.mean() < 0.05, dist_type


if __name__ == "__main__":
    rows = [f"    {t}: {measure(t)}," for t in sorted(SPECS)]
    sys.stdout.write("\n".join(rows) + "\n")
