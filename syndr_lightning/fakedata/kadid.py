"""KADID-10k's folder layout, written by the fixtures and by the demo dataset.

``images/I01.png`` ... (references), ``images/I01_TT_LL.png`` (distorted, type TT, level
LL) and ``dmos.csv`` with ``dist_img,ref_img,dmos,var`` (``dmos`` 1..5, higher is better):
what the ``kadid10k`` loader (``data/datasets/kadid.py``) reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from syndr_lightning.utils.io import atomic_open

#: ``distort(ref_id, reference, type, level) -> (distorted image, dmos, var)``; returning
#: the path of an image already written instead links to it (same pixels, no encoding).
Distorter = Callable[[str, np.ndarray, int, int], tuple[np.ndarray | Path, float, float]]


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``target`` to ``source`` (a copy where links are not supported)."""
    import shutil

    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def kadid_ref_id(index: int) -> str:
    """KADID's name of reference ``index`` (0-based): ``I01``, ``I02``, ..."""
    return f"I{index + 1:02d}"


def write_kadid(
    root: Path,
    refs: Iterable[tuple[str, np.ndarray]],
    types: Sequence[int],
    levels: Sequence[int],
    distort: Distorter,
    save: Callable[[np.ndarray, Path], object],
) -> pd.DataFrame:
    """Write ``refs`` (``(ref_id, uint8 image)``, consumed in order) and their distorted
    images in KADID's layout under ``root``; return the ``dmos.csv`` table.

    Every reference is saved before its distortions are made, type by type, level by
    level, so generators drawing from one RNG stay in a fixed order.
    """
    images = root / "images"
    rows: list[dict[str, object]] = []
    for ref_id, ref in refs:
        save(ref, images / f"{ref_id}.png")
        for t in types:
            for lv in levels:
                img, dmos, var = distort(ref_id, ref, int(t), int(lv))
                name = f"{ref_id}_{int(t):02d}_{int(lv):02d}.png"
                if isinstance(img, Path):
                    _link_or_copy(img, images / name)
                else:
                    save(img, images / name)
                rows.append(
                    {"dist_img": name, "ref_img": f"{ref_id}.png", "dmos": dmos, "var": var}
                )
    table = pd.DataFrame(rows, columns=["dist_img", "ref_img", "dmos", "var"])
    with atomic_open(root / "dmos.csv", "w", encoding="utf-8", newline="\n") as fh:
        table.to_csv(fh, index=False)
    return table
