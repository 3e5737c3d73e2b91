"""Diagnostic figures as plain functions over arrays: UMAP maps, cluster sizes, curves.

Every ``plot_*`` function draws with matplotlib's Agg backend (no display needed), writes
a PNG atomically and returns its path. None of them depends on Lightning or Hydra.

Figures of the paper reproduced here:

* Fig. 1: UMAP of learned features of the synthetic training set, coloured by score,
  by reference content and by distortion type (:func:`plot_feature_map`);
* Fig. 3: UMAP of source and target-set features together (:func:`plot_feature_map`
  with a ``dataset`` colouring);
* Fig. 9: UMAP of training references vs DDCUp candidates, selected or not
  (:func:`plot_reference_selection`);
* the cluster-size distribution before and after DRCDown
  (:func:`plot_cluster_histogram`) and kept count / validation SRCC per epoch
  (:func:`plot_training_curves`).

Dashboard figures of every run (``callbacks/dashboard.py``): prediction vs MOS per test
set (:func:`plot_prediction_scatter`) and the learning curves (:func:`plot_learning_curves`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from syndr_lightning.utils.errors import InputError
from syndr_lightning.utils.io import atomic_path

__all__ = [
    "embed_umap",
    "is_categorical",
    "plot_cluster_histogram",
    "plot_feature_map",
    "plot_learning_curves",
    "plot_prediction_scatter",
    "plot_reference_selection",
    "plot_training_curves",
    "save_figure",
]

# Beyond this many categories a legend is unreadable: colour by category, no legend.
_MAX_LEGEND = 12


def _check_features(features: np.ndarray, name: str = "features") -> np.ndarray:
    arr = np.asarray(features, dtype=np.float32)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D array [N, d]; got shape {arr.shape}")
    if arr.shape[0] < 3:
        raise InputError(
            f"{name} needs at least 3 samples for a 2-D embedding; got {arr.shape[0]}: "
            "use more images"
        )
    if not np.all(np.isfinite(arr)):
        raise InputError(
            f"{name} contains {int((~np.isfinite(arr)).sum())} NaN/inf values; check the "
            "model and the images"
        )
    return arr


def embed_umap(
    features: np.ndarray,
    *,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    n_epochs: int | None = None,
) -> np.ndarray:
    """Embed ``features`` [N, d] in 2-D with UMAP (seeded, so deterministic on CPU).

    ``n_neighbors`` is clipped to N - 1 so small sets work. ``n_epochs`` lower than
    UMAP's default (200 for N <= 10,000) trades layout quality for speed.
    """
    arr = _check_features(features)
    n = arr.shape[0]
    if n_neighbors < 2:
        raise InputError(f"n_neighbors must be >= 2; got {n_neighbors}")
    with warnings.catch_warnings():
        # umap warns that a fixed random_state disables parallelism: that is the point.
        warnings.simplefilter("ignore")
        import umap

        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(n_neighbors, n - 1),
            min_dist=min_dist,
            metric=metric,
            random_state=seed,
            n_epochs=n_epochs,
            init="spectral" if n > n_neighbors + 2 else "random",
        )
        emb = reducer.fit_transform(arr)
    return np.asarray(emb, dtype=np.float32)


def save_figure(
    fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120, tight: bool = True
) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically, close it and return the path.

    ``tight=False`` skips the tight bounding box (a second drawing pass: half the time) for
    figures with fixed margins.
    """
    final = Path(path)
    if final.suffix.lower() != ".png":
        raise InputError(f"figure path must end in .png; got {str(final)!r}")
    try:
        with atomic_path(final) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    finally:
        plt.close(fig)
    return final


def is_categorical(values: Sequence[Any] | np.ndarray | pd.Series) -> bool:
    """True for labels to colour by category (strings, or few distinct integers)."""
    series = pd.Series(values)
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return True
    if pd.api.types.is_integer_dtype(series):
        return series.nunique(dropna=True) <= 30
    return False


def _scatter(ax: Any, emb: np.ndarray, values: Any, title: str, point_size: float) -> None:
    """Draw one panel: continuous colour bar or categorical legend."""
    series = pd.Series(values).reset_index(drop=True)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    missing = series.isna().to_numpy()
    if missing.any():
        ax.scatter(emb[missing, 0], emb[missing, 1], s=point_size, c="lightgrey", label="n/a")
    shown = ~missing
    if not shown.any():
        return
    if is_categorical(series):
        cats = sorted(series[shown].astype(str).unique(), key=_natural_key)
        cmap = plt.get_cmap("tab10" if len(cats) <= 10 else "tab20")
        for i, cat in enumerate(cats):
            sel = shown & (series.astype(str) == cat).to_numpy()
            ax.scatter(
                emb[sel, 0],
                emb[sel, 1],
                s=point_size,
                color=cmap(i % cmap.N),
                label=cat if len(cats) <= _MAX_LEGEND else None,
            )
        if len(cats) <= _MAX_LEGEND:
            ax.legend(fontsize=7, markerscale=2, loc="best", frameon=False)
        else:
            ax.text(0.01, 0.01, f"{len(cats)} groups", transform=ax.transAxes, fontsize=7)
    else:
        numbers = series[shown].astype(float).to_numpy()
        sc = ax.scatter(emb[shown, 0], emb[shown, 1], s=point_size, c=numbers, cmap="viridis")
        ax.figure.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort '2' before '10' and strings alphabetically."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def plot_feature_map(
    embedding: np.ndarray,
    colourings: Mapping[str, Sequence[Any] | np.ndarray | pd.Series],
    path: str | os.PathLike[str],
    *,
    title: str = "UMAP of learned features",
    point_size: float = 6.0,
) -> Path:
    """One panel per colouring (e.g. score, reference, distortion type) of a 2-D map.

    ``embedding`` is [N, 2]; every colouring holds N values (NaN/None drawn grey).
    Categorical colourings get a legend; numeric ones a colour bar.
    """
    emb = np.asarray(embedding, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[1] != 2:
        raise InputError(f"embedding must have shape [N, 2]; got {emb.shape}")
    if not colourings:
        raise InputError("plot_feature_map needs at least one colouring (e.g. {'score': ...})")
    for name, values in colourings.items():
        if len(values) != emb.shape[0]:
            raise InputError(
                f"colouring {name!r} has {len(values)} values but the embedding has "
                f"{emb.shape[0]} points"
            )
    n = len(colourings)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], colourings.items(), strict=True):
        _scatter(ax, emb, values, f"by {name}", point_size)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_reference_selection(
    embedding: np.ndarray,
    groups: Sequence[str] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str = "Training references vs DDCUp candidates",
) -> Path:
    """Fig. 9: reference features coloured by group (``train``, ``selected``, ``rejected``)."""
    emb = np.asarray(embedding, dtype=np.float32)
    labels = np.asarray([str(g) for g in groups])
    if emb.ndim != 2 or emb.shape[1] != 2 or len(labels) != emb.shape[0]:
        raise InputError(
            f"embedding must be [N, 2] with one group per point; got {emb.shape} and "
            f"{len(labels)} groups"
        )
    style = {
        "train": ("tab:blue", "o", 30),
        "selected": ("tab:red", "*", 90),
        "rejected": ("lightgrey", "x", 25),
    }
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    for group in sorted(set(labels), key=lambda g: (g not in style, g)):
        colour, marker, size = style.get(group, ("tab:green", "s", 30))
        sel = labels == group
        ax.scatter(
            emb[sel, 0],
            emb[sel, 1],
            c=colour,
            marker=marker,
            s=size,
            label=f"{group} ({int(sel.sum())})",
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title)
    return save_figure(fig, path)


def _size_stats(sizes: np.ndarray) -> str:
    if sizes.size == 0:
        return "no clusters"
    second = float((sizes.astype(np.float64) ** 2).sum() / sizes.sum())
    cv = float(sizes.std() / sizes.mean()) if sizes.mean() > 0 else 0.0
    return (
        f"m={sizes.size}  mean={sizes.mean():.2f}  max={int(sizes.max())}\n"
        f"sum k²/sum k={second:.2f}  cv={cv:.2f}"
    )


def plot_cluster_histogram(
    sizes_before: Sequence[int] | np.ndarray,
    sizes_after: Sequence[int] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    t_u: int | None = None,
    title: str = "Cluster sizes before and after DRCDown",
) -> Path:
    """Histogram of cluster sizes k_1..k_m before and after DRCDown (log counts).

    Sizes include singletons (samples in no similar pair are clusters of size 1); the
    legend reports m, mean, max, the second moment sum k²/sum k and the coefficient of
    variation, the statistics of method.md. ``t_u`` draws DRCDown's size threshold.
    """
    before = np.asarray(sizes_before, dtype=np.int64).ravel()
    after = np.asarray(sizes_after, dtype=np.int64).ravel()
    for name, arr in (("sizes_before", before), ("sizes_after", after)):
        if arr.size and arr.min() < 1:
            raise InputError(f"{name} must hold cluster sizes >= 1; found {int(arr.min())}")
    if before.size == 0 and after.size == 0:
        raise InputError("plot_cluster_histogram needs at least one non-empty list of sizes")
    top = int(max(before.max(initial=1), after.max(initial=1)))
    bins = np.unique(np.round(np.geomspace(1, top + 1, num=min(30, top + 1))).astype(int))
    if bins.size < 2:
        bins = np.array([1, 2])
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.hist(
        before,
        bins=bins,
        histtype="stepfilled",
        alpha=0.45,
        label="before\n" + _size_stats(before),
        color="tab:blue",
    )
    # An outline, so that "after" stays visible where it equals "before".
    ax.hist(
        after,
        bins=bins,
        histtype="step",
        linewidth=2.0,
        label="after\n" + _size_stats(after),
        color="tab:red",
    )
    if t_u is not None:
        ax.axvline(
            float(t_u) + 0.5, color="black", linestyle="--", linewidth=1, label=f"T_u = {t_u}"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cluster size k (samples)")
    ax.set_ylabel("number of clusters")
    ax.legend(fontsize=7, frameon=True, framealpha=0.9)
    ax.set_title(title)
    return save_figure(fig, path)


def _per_epoch(metrics: pd.DataFrame, column: str) -> pd.Series:
    """Last logged value of ``column`` per epoch (NaN rows dropped)."""
    if column not in metrics.columns or "epoch" not in metrics.columns:
        return pd.Series(dtype=float)
    rows = metrics[["epoch", column]].dropna()
    if rows.empty:
        return pd.Series(dtype=float)
    return rows.groupby("epoch")[column].last().astype(float)


def plot_training_curves(
    metrics: pd.DataFrame | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    kept_key: str = "drcdown/kept",
    srcc_key: str = "val/srcc",
    title: str = "DRCDown kept samples and validation SRCC per epoch",
) -> Path:
    """Kept count and validation SRCC per epoch, from a Lightning CSV ``metrics.csv``.

    ``metrics`` is the CSV logger's table (or its path): one column per metric key and
    an ``epoch`` column. Missing keys are shown as an empty panel with a note.
    """
    table = _read_metrics(metrics)
    kept = _per_epoch(table, kept_key)
    srcc = _per_epoch(table, srcc_key)
    if kept.empty and srcc.empty:
        raise InputError(
            f"metrics have neither {kept_key!r} nor {srcc_key!r} per epoch (columns: "
            f"{list(table.columns)}); log them or pass other keys"
        )
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
    for ax, series, label in ((axes[0], kept, kept_key), (axes[1], srcc, srcc_key)):
        ax.set_title(label)
        ax.set_xlabel("epoch")
        if series.empty:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.plot(series.index.to_numpy(), series.to_numpy(), marker="o")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, path)


def _read_metrics(metrics: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(metrics, pd.DataFrame):
        return metrics
    where = Path(metrics)
    if not where.is_file():
        raise InputError(
            f"metrics file {str(where)!r} does not exist; pass the CSV logger's metrics.csv"
        )
    try:
        return pd.read_csv(where)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read metrics file {str(where)!r} as CSV: {exc}") from None


def plot_prediction_scatter(
    mos: Sequence[float] | np.ndarray,
    predictions: Sequence[float] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str = "Prediction vs MOS",
    max_points: int = 20_000,
    seed: int = 0,
) -> Path:
    """Predicted score against MOS (both 0..10) per image, with the identity line and the
    SRCC/PLCC of all images in the legend. Beyond ``max_points`` images a seeded subsample
    is drawn (the correlations still use every image)."""
    y = np.asarray(mos, dtype=np.float64).ravel()
    p = np.asarray(predictions, dtype=np.float64).ravel()
    if y.size != p.size or y.size < 2:
        raise InputError(
            f"a scatter needs as many predictions as MOS values (at least 2); got {p.size} "
            f"predictions and {y.size} MOS values"
        )
    from scipy.stats import pearsonr, spearmanr

    finite = np.isfinite(y) & np.isfinite(p)
    srcc = plcc = float("nan")
    if finite.sum() > 1:
        with warnings.catch_warnings():  # constant predictions: NaN, said in the legend
            warnings.simplefilter("ignore")
            srcc = float(spearmanr(y[finite], p[finite]).statistic)
            plcc = float(pearsonr(y[finite], p[finite]).statistic)
    shown = np.flatnonzero(finite)
    if shown.size > max_points:
        shown = np.sort(np.random.default_rng(seed).choice(shown, max_points, replace=False))
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    fig.subplots_adjust(left=0.14, right=0.96, bottom=0.11, top=0.92)  # fixed: fast to save
    ax.scatter(
        y[shown],
        p[shown],
        s=8 if shown.size > 2000 else 14,
        alpha=0.5 if shown.size > 2000 else 0.8,
        label=f"{finite.sum()} images\nSRCC {srcc:.3f}  PLCC {plcc:.3f}",
    )
    lo = float(min(y[finite].min(initial=0.0), p[finite].min(initial=0.0)))
    hi = float(max(y[finite].max(initial=10.0), p[finite].max(initial=10.0)))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="y = x")
    ax.set_xlabel("MOS (0..10)")
    ax.set_ylabel("predicted score (0..10)")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return save_figure(fig, path, dpi=100, tight=False)


#: Panels of :func:`plot_learning_curves`: title -> keys drawn in it.
LEARNING_PANELS: dict[str, tuple[str, ...]] = {
    "training loss": ("train/loss_epoch",),
    "validation": ("val/srcc", "val/plcc", "val/krcc"),
    "DRCDown kept fraction": ("drcdown/kept_fraction",),
}


def plot_learning_curves(
    history: pd.DataFrame | Sequence[Mapping[str, float]],
    path: str | os.PathLike[str],
    *,
    title: str = "Learning curves",
) -> Path:
    """Training loss, validation correlations and DRCDown's kept fraction per epoch.

    ``history``: one row per epoch with an ``epoch`` column and metric columns (missing
    ones are left out; a panel with none of its keys is dropped).
    """
    table = pd.DataFrame(history)
    if "epoch" not in table.columns or table.empty:
        raise InputError("learning curves need a history with an 'epoch' column and rows")
    panels = {
        name: [k for k in keys if k in table.columns and table[k].notna().any()]
        for name, keys in LEARNING_PANELS.items()
    }
    panels = {name: keys for name, keys in panels.items() if keys}
    if not panels:
        raise InputError(
            f"the history has none of {sorted(k for ks in LEARNING_PANELS.values() for k in ks)}"
        )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.6), squeeze=False)
    fig.subplots_adjust(left=0.3 / len(panels), right=0.98, bottom=0.14, top=0.82, wspace=0.3)
    for ax, (name, keys) in zip(axes[0], panels.items(), strict=True):
        for key in keys:
            series = _per_epoch(table, key)
            ax.plot(series.index.to_numpy(), series.to_numpy(), marker="o", label=key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=100, tight=False)
