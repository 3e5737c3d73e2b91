"""DDCUp and DRCDown as plain functions over numpy arrays (no Lightning, no Hydra).

See docs/reshaping.md. ``reference.py`` holds the straightforward dense implementation
used only as test oracle and benchmark baseline.
"""

from syndr_lightning.reshape.clusters import (
    RULES,
    cluster_stats,
    connected_clusters,
    downsample,
    keep_count,
)
from syndr_lightning.reshape.ddcup import (
    WEIGHTS,
    Neighbours,
    ddcup_neighbours,
    ddcup_pseudo_labels,
    ddcup_select,
    selection_thresholds,
)
from syndr_lightning.reshape.drcdown import DRCDownResult, drcdown
from syndr_lightning.reshape.pairs import (
    BACKENDS,
    PairPlan,
    balanced_slices,
    label_order,
    prepare,
    similar_pairs,
    similar_pairs_slice,
)

__all__ = [
    "BACKENDS",
    "RULES",
    "WEIGHTS",
    "DRCDownResult",
    "Neighbours",
    "PairPlan",
    "balanced_slices",
    "cluster_stats",
    "connected_clusters",
    "ddcup_neighbours",
    "ddcup_pseudo_labels",
    "ddcup_select",
    "downsample",
    "drcdown",
    "keep_count",
    "label_order",
    "prepare",
    "selection_thresholds",
    "similar_pairs",
    "similar_pairs_slice",
]
