"""The demo's learning curves: per-epoch tables, the plateau epoch, and one figure.

Plain functions over the CSV logger's ``metrics.csv`` tables (no Lightning, no Hydra):

* :func:`epoch_curves` turns one run's ``metrics.csv`` into one row per epoch with the
  training loss, validation SRCC and PLCC, and DRCDown's kept fraction;
* :func:`levelled_off_epoch` is the first epoch whose validation SRCC is within
  ``tolerance`` of the run's best: where the curve reached its plateau;
* :func:`plot_demo_curves` draws every (variant, seed) run on four panels and marks
  each run's plateau epoch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from syndr_lightning.utils.errors import InputError

__all__ = ["CURVE_KEYS", "epoch_curves", "levelled_off_epoch", "plot_demo_curves"]

#: Column of :func:`epoch_curves` -> the metric key logged by the training run.
CURVE_KEYS: dict[str, str] = {
    "train_loss": "train/loss_epoch",
    "val_srcc": "val/srcc",
    "val_plcc": "val/plcc",
    "kept_fraction": "drcdown/kept_fraction",
}


def epoch_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per epoch (index ``epoch``) with the columns of :data:`CURVE_KEYS`.

    ``metrics`` is a Lightning CSV logger table (an ``epoch`` column, one column per
    logged key, several rows per epoch). A key that was never logged gives a column of
    NaN (``kept_fraction`` without DRCDown). Only training epochs count: rows of an epoch
    without a validation SRCC (a run stopped mid-epoch) or, when the training loss was
    logged, without a training loss (the validation of the selected checkpoint that
    follows ``fit`` is logged under the next epoch number) are dropped.
    """
    if "epoch" not in metrics.columns:
        raise InputError(
            f"metrics.csv has no 'epoch' column (columns: {list(metrics.columns)}); pass the "
            "CSV logger's table"
        )
    out = pd.DataFrame(index=pd.Index([], name="epoch", dtype=int))
    for column, key in CURVE_KEYS.items():
        if key in metrics.columns:
            rows = metrics[["epoch", key]].dropna()
            series = rows.groupby(rows["epoch"].astype(int))[key].last().astype(float)
        else:
            series = pd.Series(dtype=float)
        out = out.join(series.rename(column), how="outer") if len(series) else out
        if column not in out.columns:
            out[column] = np.nan
    out = out[list(CURVE_KEYS)].sort_index()
    out.index = out.index.astype(int)
    out.index.name = "epoch"
    keep = out["val_srcc"].notna()
    if out["train_loss"].notna().any():
        keep &= out["train_loss"].notna()
    return out[keep]


def levelled_off_epoch(val_srcc: Sequence[float], tolerance: float = 0.01) -> int | None:
    """First epoch (0-based) whose value is within ``tolerance`` of the best value.

    ``None`` for an empty sequence. ``tolerance`` must be >= 0.
    """
    values = np.asarray(val_srcc, dtype=np.float64)
    if tolerance < 0:
        raise InputError(f"the plateau tolerance must be >= 0; got {tolerance}")
    finite = np.isfinite(values)
    if not finite.any():
        return None
    best = float(values[finite].max())
    return int(np.flatnonzero(finite & (values >= best - tolerance))[0])


def plot_demo_curves(
    curves: Mapping[tuple[str, int], pd.DataFrame],
    path: str | os.PathLike[str],
    *,
    levelled: Mapping[tuple[str, int], int | None] | None = None,
    title: str = "Demo learning curves (every variant and seed)",
) -> Path:
    """Training loss, validation SRCC/PLCC and kept fraction per epoch, one line per run.

    ``curves`` maps ``(variant, seed)`` to a table of :func:`epoch_curves`; each variant
    gets one colour, each seed one line. ``levelled`` marks each run's plateau epoch on
    the SRCC panel (a large dot) and every run's last epoch gets a small cross.
    """
    from syndr_lightning.viz.figures import plt, save_figure

    if not curves:
        raise InputError("no learning curves to draw: pass at least one run's epoch table")
    variants = list(dict.fromkeys(v for v, _ in curves))
    colours = {v: f"C{i}" for i, v in enumerate(variants)}
    panels = (
        ("train_loss", "training loss (epoch mean)"),
        ("val_srcc", "validation SRCC"),
        ("val_plcc", "validation PLCC"),
        ("kept_fraction", "DRCDown kept fraction"),
    )
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    seen: set[str] = set()
    for (variant, seed), table in curves.items():
        colour = colours[variant]
        epochs = table.index.to_numpy()
        for ax, (column, label) in zip(axes.flat, panels, strict=True):
            series = table[column]
            if series.notna().any():
                ax.plot(
                    epochs,
                    series.to_numpy(),
                    color=colour,
                    alpha=0.75,
                    lw=1.2,
                    marker=".",
                    label=variant if variant not in seen else None,
                )
                ax.plot(epochs[-1:], series.to_numpy()[-1:], "x", color=colour, ms=5)
            ax.set_title(label)
        seen.add(variant)
        mark = (levelled or {}).get((variant, seed))
        if mark is not None and mark in table.index:
            axes.flat[1].plot([mark], [table.loc[mark, "val_srcc"]], "o", color=colour, ms=6)
    for ax, (column, _) in zip(axes.flat, panels, strict=True):
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if not ax.lines:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
        if column == "kept_fraction" and ax.lines:
            ax.set_ylim(0.0, 1.05)
    axes.flat[0].legend(loc="upper right")
    fig.suptitle(title + "\n(dot: epoch the validation SRCC levelled off; cross: last epoch)")
    fig.tight_layout()
    return save_figure(fig, path)
