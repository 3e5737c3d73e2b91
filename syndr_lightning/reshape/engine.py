"""DRCDown's per-epoch engine: the feature pass, the subset decision and its DDP sharing.

Mechanics (see docs/syndr.md):

* Lightning rebuilds the train dataloader at the start of every epoch (with
  ``reload_dataloaders_every_n_epochs=1``) BEFORE ``on_train_epoch_start``. The subset of
  epoch ``e`` is therefore computed lazily, inside ``datamodule.train_indices(e)`` which
  ``train_dataloader()`` calls: at that moment the weights are exactly those at the start
  of epoch ``e``, and the loader, the batch count, the progress bar and the schedulers
  all see the right size.
* :class:`DRCDownSelector` does the work: a feature pass of the current model over the
  pool (:func:`syndr_lightning.reshape.features.extract_features`), then
  :func:`syndr_lightning.reshape.drcdown.drcdown` with the :class:`DRCDownParams` whole
  (pairs -> clusters -> downsampling, random choices seeded by (seed, epoch)).
* DDP (an initialised ``torch.distributed`` process group): every rank extracts the
  features of one shard, the shards are all-gathered
  (:func:`~syndr_lightning.reshape.distributed.all_gather_rows`), rank 0's decision is
  broadcast, so every rank trains on the same subset.

Free of Lightning: the datamodule hands the model in; ``callbacks/drcdown.py`` logs.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from syndr_lightning.reshape.distributed import all_gather_rows, distributed_drcdown, world_of
from syndr_lightning.reshape.drcdown import drcdown
from syndr_lightning.reshape.features import extract_features
from syndr_lightning.reshape.params import DRCDownParams, FeaturePassParams
from syndr_lightning.utils.errors import ConfigError, InputError


def subset_hash(indices: np.ndarray | Sequence[int]) -> str:
    """SHA-256 (hex) of the sorted int64 indices: equal subsets have equal hashes."""
    arr = np.sort(np.asarray(indices, dtype=np.int64))
    return hashlib.sha256(arr.tobytes()).hexdigest()


# --------------------------------------------------------------------------- selection


@dataclass
class EpochSubset:
    """What DRCDown decided for one epoch."""

    epoch: int
    kept: np.ndarray  # sorted int64 indices into the pool DRCDown ran over
    n_total: int
    stats: dict[str, float] = field(default_factory=dict)
    feature_seconds: float = 0.0
    select_seconds: float = 0.0

    @property
    def hash(self) -> str:
        """Hash of the kept indices."""
        return subset_hash(self.kept)

    def metrics(self) -> dict[str, float]:
        """The ``drcdown/*`` numbers logged for this epoch (docs/metrics.md); the subset's
        hash is run metadata, not a number (``callbacks/drcdown.py``)."""
        out = {
            "drcdown/kept": float(len(self.kept)),
            "drcdown/total": float(self.n_total),
            "drcdown/kept_fraction": len(self.kept) / max(1, self.n_total),
            "drcdown/feature_seconds": self.feature_seconds,
            "drcdown/select_seconds": self.select_seconds,
        }
        for k, v in self.stats.items():
            out[f"drcdown/{k}"] = float(v)
        return out

    def record(self) -> dict[str, Any]:
        """A JSON-able summary (hash, counts, stats, timings)."""
        return {
            "epoch": self.epoch,
            "hash": self.hash,
            "kept": len(self.kept),
            "total": self.n_total,
            "stats": {k: float(v) for k, v in self.stats.items()},
            "feature_seconds": self.feature_seconds,
            "select_seconds": self.select_seconds,
        }


#: ``cluster_stats`` key -> logged name (``drcdown/<name>``; ``<name>_after`` after thinning).
STAT_NAMES: dict[str, str] = {
    "n_clusters": "clusters",
    "n_singletons": "singletons",
    "m": "clusters_incl_singletons",
    "size_mean": "size_mean",
    "size_max": "size_max",
    "size_k2_over_k": "size_k2_over_k",
    "size_cv": "size_cv",
    "cluster_size_mean": "cluster_size_mean",
}


def _flatten_stats(res: Any) -> dict[str, float]:
    """Cluster diagnostics of a DRCDownResult as flat ``name -> float`` (logged as
    ``drcdown/<name>``, docs/metrics.md): the pair count, the cluster-size statistics
    before thinning under :data:`STAT_NAMES`, the same after thinning as ``<name>_after``."""
    stats: dict[str, float] = {"pairs": float(getattr(res, "n_pairs", 0))}
    for suffix, values in (
        ("", getattr(res, "stats_before", {}) or {}),
        ("_after", getattr(res, "stats_after", {}) or {}),
    ):
        for key, name in STAT_NAMES.items():
            if key in values:
                stats[name + suffix] = float(values[key])
    return stats


class DRCDownSelector:
    """Computes the DRCDown subset of one epoch from the current model, once per epoch.

    ``paths`` and ``labels`` describe the pool DRCDown runs over (the original training
    samples, or original + upsampled); ``params`` and ``feature_pass`` are the validated
    parameter objects (``feature_pass.crop_size`` resolved), ``cache_dir`` the crop cache
    (None: no cache). :meth:`compute` returns the :class:`EpochSubset`; results are
    memoised per epoch in ``results`` for the current fit.
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: np.ndarray,
        params: DRCDownParams,
        feature_pass: FeaturePassParams,
        seed: int,
        cache_dir: str | None = None,
    ) -> None:
        labels = np.asarray(labels, dtype=np.float64)
        if len(paths) != len(labels):
            raise InputError(f"{len(paths)} paths but {len(labels)} labels for DRCDown")
        if len(paths) == 0:
            raise InputError("DRCDown needs at least one training sample; the pool is empty")
        if not np.all(np.isfinite(labels)):
            raise InputError("DRCDown labels must be finite (0..10); found NaN or inf")
        self.paths = list(paths)
        self.labels = labels
        if feature_pass.crop_size is None:
            raise InputError("feature_pass.crop_size must be resolved (the training crop)")
        self.params = params
        self.feature_pass = feature_pass
        self.cache_dir = cache_dir
        self.seed = int(seed)
        self.results: dict[int, EpochSubset] = {}

    def reset(self) -> None:
        """Forget the memoised subsets (a new fit starts)."""
        self.results.clear()

    def compute(
        self,
        model: torch.nn.Module,
        epoch: int,
        *,
        progress: bool | Any = False,
        group: dist.ProcessGroup | None = None,
    ) -> EpochSubset:
        """Feature pass (this rank's shard), gather, decide (rank 0), broadcast; memoised.

        Under an initialised process group every rank of ``group`` must call this.
        """
        rank, world = world_of(group)
        n = len(self.paths)
        t0 = time.perf_counter()
        shard = np.arange(rank, n, world, dtype=np.int64)
        feats = extract_features(
            model,
            [self.paths[i] for i in shard],
            crop_size=int(self.feature_pass.crop_size),
            resize=self.feature_pass.resize,
            batch_size=self.feature_pass.batch_size,
            num_workers=self.feature_pass.num_workers,
            half=self.feature_pass.half,
            cache_dir=self.cache_dir,
            progress=progress,
        )
        if world > 1:
            rows = torch.from_numpy(feats.astype(np.float32, copy=False))
            feats = all_gather_rows(rows, torch.from_numpy(shard), n, group)
        feature_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        decision: tuple[np.ndarray, dict[str, float]] | None = None
        split = world > 1 and self.params.split_pairs
        if rank == 0 or split:  # split: every rank searches its slice of the pairs
            run = distributed_drcdown if split else drcdown
            res = run(
                feats.astype(np.float32), self.labels, self.params, seed=self.seed, epoch=epoch
            )
            decision = (np.sort(np.asarray(res.kept, dtype=np.int64)), _flatten_stats(res))
        if world > 1:
            # rank 0's decision is the one every rank trains on
            box = [decision]
            dist.broadcast_object_list(
                box, src=dist.get_global_rank(group, 0) if group else 0, group=group
            )
            decision = box[0]
        assert decision is not None
        kept, stats = decision
        result = EpochSubset(
            epoch=int(epoch),
            kept=np.asarray(kept, dtype=np.int64),
            n_total=n,
            stats=stats,
            feature_seconds=feature_seconds,
            select_seconds=time.perf_counter() - t1,
        )
        self.results[int(epoch)] = result
        return result

    def state_dict(self) -> dict[str, Any]:
        """The last decision, for the datamodule's checkpoint state ({} before any)."""
        if not self.results:
            return {}
        last = self.results[max(self.results)]
        return {
            "drcdown_epoch": last.epoch,
            "drcdown_kept": last.kept.tolist(),
            "drcdown_total": last.n_total,
            "drcdown_stats": dict(last.stats),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a decision saved by :meth:`state_dict` (a pool of another size is a
        ConfigError: the run resumed with other data or settings)."""
        if not state or "drcdown_epoch" not in state:
            return
        if int(state["drcdown_total"]) != len(self.paths):
            raise ConfigError(
                f"the checkpoint's DRCDown pool has {state['drcdown_total']} samples but "
                f"this run's has {len(self.paths)}; resume with the same data and reshape settings"
            )
        epoch = int(state["drcdown_epoch"])
        self.results[epoch] = EpochSubset(
            epoch=epoch,
            kept=np.asarray(state["drcdown_kept"], dtype=np.int64),
            n_total=int(state["drcdown_total"]),
            stats=dict(state.get("drcdown_stats", {})),
        )
