"""Contact sheet of one reference image: one row per distortion type, one column per level."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import numpy as np
from PIL import Image

from syndr_lightning.distort.core import derive_seed, distort_image
from syndr_lightning.distort.spec import (
    ALL_LEVELS,
    ALL_TYPES,
    check_level,
    check_type,
    describe,
    spec,
)
from syndr_lightning.utils.errors import InputError
from syndr_lightning.utils.io import atomic_path


def shrink(img: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (Lanczos) so the longer side is at most ``max_side``; never upscale."""
    h, w = img.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return img
    size = (max(2, round(w * scale)), max(2, round(h * scale)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def render_preview(
    img: np.ndarray,
    out_path: str | os.PathLike[str],
    *,
    types: Sequence[int] = ALL_TYPES,
    levels: Sequence[int] = ALL_LEVELS,
    seed: int = 0,
    image_id: str = "preview",
    max_side: int = 256,
    dpi: int = 80,
) -> None:
    """Render the labelled sheet (rows: types with names; columns: levels with parameters).

    The image is first shrunk to ``max_side`` so the sheet stays small; distortions are
    applied at that size (noise and block sizes are in pixels, so they look stronger).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"preview needs an H x W x 3 uint8 image, got {arr.dtype} {arr.shape}")
    t_list = [check_type(t) for t in types]
    l_list = [check_level(lv) for lv in levels]
    small = shrink(arr, max_side)
    h, w = small.shape[:2]
    cell_w = 2.4
    cell_h = cell_w * h / w + 0.45
    fig, axes = plt.subplots(
        len(t_list),
        len(l_list) + 1,
        figsize=(cell_w * (len(l_list) + 1) + 0.6, cell_h * len(t_list) + 0.6),
        squeeze=False,
    )
    for r, t in enumerate(t_list):
        ax = axes[r][0]
        ax.imshow(small)
        ax.set_title("reference", fontsize=10)
        label = textwrap.fill(f"{t}. {spec(t).name}", width=max(12, int(cell_h * 9)))
        ax.set_ylabel(label, fontsize=12, fontweight="bold")
        for c, lv in enumerate(l_list, start=1):
            out = distort_image(small, t, lv, derive_seed(seed, image_id, t, lv))
            ax = axes[r][c]
            ax.imshow(out)
            ax.set_title(f"level {lv}: {describe(t, lv)}", fontsize=10)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
