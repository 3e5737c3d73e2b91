"""Figures: UMAP feature maps (paper Figs. 1, 3, 9), DRCDown cluster sizes, curves."""

from __future__ import annotations

from syndr_lightning.utils.lazy import lazy_exports

_EXPORTS = {
    "embed_umap": "syndr_lightning.viz.figures",
    "plot_cluster_histogram": "syndr_lightning.viz.figures",
    "plot_feature_map": "syndr_lightning.viz.figures",
    "plot_reference_selection": "syndr_lightning.viz.figures",
    "plot_training_curves": "syndr_lightning.viz.figures",
    "save_figure": "syndr_lightning.viz.figures",
    "log_figures": "syndr_lightning.viz.logging",
}

__all__ = sorted(_EXPORTS)

lazy_exports(__name__, _EXPORTS)
