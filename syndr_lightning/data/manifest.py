"""The common manifest: one row per image, the currency between loaders and training.

A manifest is a :class:`pandas.DataFrame` with at least the columns in
:data:`MANIFEST_COLUMNS`:

=============  ===========  ==========================================================
column         dtype        meaning
=============  ===========  ==========================================================
``path``       str          absolute path of the image file
``score``      float64      label on 0..10, higher = better (min-max over the dataset,
                            flipped for DMOS datasets); NaN for unlabeled images
``raw_score``  float64      the label exactly as published (NaN when unlabeled)
``ref``        str / None   reference-content id (``None`` for authentic images)
``dist_type``  Int64        KADID-style distortion type 1..25 (or the dataset's own
                            type id); ``<NA>`` when not applicable
``level``      Int64        distortion level; ``<NA>`` when not applicable
``dataset``    str          dataset name (``kadid10k``, ``livec``, ...)
=============  ===========  ==========================================================

Optional columns: ``split`` (``train``/``val``/``test``), ``dist_class`` (PIPAL's
distortion class), ``source`` (``original``/``upsampled``), ``seed``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.labels import check_labels

MANIFEST_COLUMNS: tuple[str, ...] = (
    "path",
    "score",
    "raw_score",
    "ref",
    "dist_type",
    "level",
    "dataset",
)


def normalise_scores(raw: np.ndarray | pd.Series, higher_is_better: bool) -> np.ndarray:
    """Min-max ``raw`` onto 0..10 with higher = better (flipped when lower is better)."""
    values = np.asarray(raw, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full_like(values, np.nan)
    lo, hi = float(finite.min()), float(finite.max())
    if hi == lo:
        return np.where(np.isfinite(values), 5.0, np.nan)
    scaled = (values - lo) / (hi - lo) * 10.0
    return scaled if higher_is_better else 10.0 - scaled


def make_manifest(
    paths: list[str],
    raw_scores: np.ndarray | list[float] | None,
    *,
    dataset: str,
    higher_is_better: bool = True,
    refs: list[str | None] | None = None,
    dist_types: list[int | None] | None = None,
    levels: list[int | None] | None = None,
    duplicates: str = "error",
    **extra: list[object],
) -> pd.DataFrame:
    """Assemble a manifest, normalising ``raw_scores`` to 0..10 higher-is-better.

    Paths are normalised first (``os.path.normpath``). An image listed more than once is
    refused naming its rows (``duplicates="error"``),
    since a conflicting duplicate would move every other image's normalised score;
    ``duplicates="mean"`` keeps one row per image with the mean of its raw scores.
    """
    n = len(paths)
    raw = np.full(n, np.nan) if raw_scores is None else np.asarray(raw_scores, dtype=np.float64)
    # One spelling per file ("images/../images/x.png" is "images/x.png"), so that the
    # duplicate check and every cache see the same path.
    paths = [os.path.normpath(str(p)) for p in paths]
    keep = _duplicates(paths, raw, dataset, duplicates)
    if keep is not None:  # duplicates="mean": one row per image, raw scores averaged
        paths, raw = [paths[i] for i in keep[0]], keep[1]
        refs = [refs[i] for i in keep[0]] if refs is not None else None
        dist_types = [dist_types[i] for i in keep[0]] if dist_types is not None else None
        levels = [levels[i] for i in keep[0]] if levels is not None else None
        extra = {k: [list(v)[i] for i in keep[0]] for k, v in extra.items()}
        n = len(paths)
    if raw_scores is not None:
        check_labels(raw, f"{dataset} labels")
    df = pd.DataFrame(
        {
            "path": [str(p) for p in paths],
            "score": normalise_scores(raw, higher_is_better),
            "raw_score": raw,
            "ref": refs if refs is not None else [None] * n,
            "dist_type": pd.array(dist_types if dist_types is not None else [None] * n, "Int64"),
            "level": pd.array(levels if levels is not None else [None] * n, "Int64"),
            "dataset": dataset,
        }
    )
    for key, values in extra.items():
        df[key] = values
    return df


DUPLICATE_RULES = ("error", "mean")


def _duplicates(
    paths: list[str], raw: np.ndarray, dataset: str, rule: str
) -> tuple[list[int], np.ndarray] | None:
    """None when every path is listed once; else the rows to keep and their mean raw
    scores (``rule="mean"``), or a DatasetError naming the rows (``rule="error"``)."""
    if rule not in DUPLICATE_RULES:
        raise ConfigError(
            f"{dataset}: duplicates={rule!r} is unknown; allowed values: "
            f"{', '.join(DUPLICATE_RULES)}"
        )
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        rows.setdefault(str(p), []).append(i)
    dup = {p: r for p, r in rows.items() if len(r) > 1}
    if not dup:
        return None
    if rule == "error":
        path, where = next(iter(dup.items()))
        scores = ", ".join(f"{raw[i]:g}" for i in where)
        raise DatasetError(
            f"{dataset}: {len(dup)} images are listed more than once with scores that would "
            f"shift every other image's normalised score; first: {path!r} at label rows "
            f"{', '.join(str(i + 1) for i in where)} (data rows, 1-based) with scores "
            f"{scores}; remove the duplicates, or pass the loader option duplicates=mean to "
            f"average them"
        )
    keep = [r[0] for r in rows.values()]
    mean = np.array(
        [np.nanmean(raw[r]) if np.isfinite(raw[r]).any() else np.nan for r in rows.values()]
    )
    return keep, mean


def validate_manifest(df: pd.DataFrame, *, labeled: bool = True) -> pd.DataFrame:
    """Check that ``df`` is a manifest; raise :class:`DatasetError` saying what is wrong."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(
            f"manifest lacks columns {missing}; expected at least {list(MANIFEST_COLUMNS)}"
        )
    if len(df) == 0:
        raise DatasetError("manifest is empty: no images were found")
    if labeled:
        scores = df["score"].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(scores)):
            bad = np.flatnonzero(~np.isfinite(scores))
            first = int(bad[0])
            raise DatasetError(
                f"manifest has {bad.size} rows without a finite score (first: row {first}, "
                f"{str(df['path'].iloc[first])!r}, raw score {df['raw_score'].iloc[first]!r} "
                f"in dataset {str(df['dataset'].iloc[first])!r}); give every image a numeric "
                f"score in the label file or remove its row"
            )
        if scores.min() < -1e-6 or scores.max() > 10 + 1e-6:
            raise DatasetError(
                f"scores must lie in 0..10 (found {scores.min():.3f}..{scores.max():.3f})"
            )
    return df
