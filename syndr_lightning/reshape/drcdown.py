"""DRCDown end to end: pairs -> clusters -> per-cluster downsampling, with diagnostics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from syndr_lightning.reshape.clusters import cluster_stats, connected_clusters, downsample
from syndr_lightning.reshape.pairs import similar_pairs
from syndr_lightning.reshape.params import DRCDownParams


@dataclass
class DRCDownResult:
    """What one DRCDown pass decided, and how long its two phases took."""

    kept: np.ndarray  # sorted int64 indices of the samples kept this epoch
    cluster: np.ndarray  # int64 component id per sample, -1 for samples in no pair
    stats_before: dict[str, Any] = field(default_factory=dict)
    stats_after: dict[str, Any] = field(default_factory=dict)
    n_pairs: int = 0
    seconds_pairs: float = 0.0
    seconds_select: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable diagnostics (no per-sample arrays)."""
        return {
            "n_pairs": self.n_pairs,
            "seconds_pairs": self.seconds_pairs,
            "seconds_select": self.seconds_select,
            "before": self.stats_before,
            "after": self.stats_after,
        }


def drcdown(
    features: np.ndarray,
    labels: np.ndarray,
    params: DRCDownParams = DRCDownParams(),
    *,
    seed: int = 0,
    epoch: int = 0,
    device: str | torch.device | None = None,
    precision: str = "auto",
) -> DRCDownResult:
    """Run DRCDown on one epoch's features ``[N, d]`` and labels ``[N]`` (0..10 scale).

    ``params``: the validated :class:`DRCDownParams` (``T_f``, ``T_q``, ``T_u``, ``rule``,
    ``backend``). See ``similar_pairs`` for ``device`` and ``precision`` (they change the
    speed, never the result), ``downsample`` for ``seed`` and ``epoch``.
    """
    t0 = time.perf_counter()
    i, j = similar_pairs(
        features,
        labels,
        t_f=params.T_f,
        t_q=params.T_q,
        backend=params.backend,
        device=device,
        precision=precision,
    )
    n = int(np.asarray(features).shape[0])
    return drcdown_from_pairs(
        n, i, j, params, seed=seed, epoch=epoch, seconds_pairs=time.perf_counter() - t0
    )


def drcdown_from_pairs(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    params: DRCDownParams = DRCDownParams(),
    *,
    seed: int = 0,
    epoch: int = 0,
    seconds_pairs: float = 0.0,
) -> DRCDownResult:
    """The rest of DRCDown once the similar pairs ``(i, j)`` of ``n`` samples are known."""
    t1 = time.perf_counter()
    cluster = connected_clusters(n, i, j)
    kept = downsample(cluster, params, seed=seed, epoch=epoch)
    return DRCDownResult(
        kept=kept,
        cluster=cluster,
        stats_before=cluster_stats(cluster),
        stats_after=cluster_stats(cluster, kept),
        n_pairs=int(i.size),
        seconds_pairs=seconds_pairs,
        seconds_select=time.perf_counter() - t1,
    )
