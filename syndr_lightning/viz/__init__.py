"""Figures: UMAP feature maps (paper Figs. 1, 3, 9), DRCDown cluster sizes, curves."""

from syndr_lightning.viz.figures import (
    embed_umap,
    plot_cluster_histogram,
    plot_feature_map,
    plot_reference_selection,
    plot_training_curves,
    save_figure,
)
from syndr_lightning.viz.logging import log_figures

__all__ = [
    "embed_umap",
    "log_figures",
    "plot_cluster_histogram",
    "plot_feature_map",
    "plot_reference_selection",
    "plot_training_curves",
    "save_figure",
]
