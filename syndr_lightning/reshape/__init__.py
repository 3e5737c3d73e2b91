"""DDCUp and DRCDown as plain functions over numpy arrays (no Lightning, no Hydra).

See docs/reshaping.md. ``reference.py`` holds the straightforward dense implementation
used only as test oracle and benchmark baseline.
"""

from __future__ import annotations

from syndr_lightning.utils.lazy import lazy_exports

_EXPORTS = {
    "RULES": "syndr_lightning.reshape.params",
    "cluster_stats": "syndr_lightning.reshape.clusters",
    "connected_clusters": "syndr_lightning.reshape.clusters",
    "downsample": "syndr_lightning.reshape.clusters",
    "keep_count": "syndr_lightning.reshape.clusters",
    "WEIGHTS": "syndr_lightning.reshape.params",
    "Neighbours": "syndr_lightning.reshape.ddcup",
    "ddcup_neighbours": "syndr_lightning.reshape.ddcup",
    "ddcup_pseudo_labels": "syndr_lightning.reshape.ddcup",
    "ddcup_select": "syndr_lightning.reshape.ddcup",
    "selection_thresholds": "syndr_lightning.reshape.ddcup",
    "DRCDownResult": "syndr_lightning.reshape.drcdown",
    "drcdown": "syndr_lightning.reshape.drcdown",
    "BACKENDS": "syndr_lightning.reshape.params",
    "PairPlan": "syndr_lightning.reshape.pairs",
    "balanced_slices": "syndr_lightning.reshape.pairs",
    "label_order": "syndr_lightning.reshape.pairs",
    "prepare": "syndr_lightning.reshape.pairs",
    "similar_pairs": "syndr_lightning.reshape.pairs",
    "similar_pairs_slice": "syndr_lightning.reshape.pairs",
}

__all__ = sorted(_EXPORTS)

lazy_exports(__name__, _EXPORTS)
