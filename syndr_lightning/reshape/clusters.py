"""DRCDown steps 2-3: clusters from pairs, per-cluster downsampling, cluster-size statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from syndr_lightning.reshape._validate import check_int
from syndr_lightning.reshape.params import RULES, DRCDownParams
from syndr_lightning.utils.errors import InputError


def _check_pairs(n: int, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i = np.asarray(i)
    j = np.asarray(j)
    if i.ndim != 1 or j.ndim != 1 or i.shape != j.shape:
        raise InputError(
            f"pairs: expected two 1-D index arrays of equal length, found shapes {i.shape} "
            f"and {j.shape}"
        )
    if i.size and not (np.issubdtype(i.dtype, np.integer) and np.issubdtype(j.dtype, np.integer)):
        raise InputError(f"pairs: expected integer indices, found {i.dtype} and {j.dtype}")
    i = i.astype(np.int64, copy=False)
    j = j.astype(np.int64, copy=False)
    if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise InputError(
            f"pairs: indices must lie in [0, {n}) for n={n} samples, found range "
            f"[{min(i.min(), j.min())}, {max(i.max(), j.max())}]"
        )
    return i, j


def connected_clusters(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Component id per sample of the pair graph; -1 for samples in no pair.

    Ids are 0, 1, 2, ... in the order of each component's smallest member, so the result
    depends only on the graph, not on the pair order.
    """
    n = check_int(n, "n", minimum=0)
    i, j = _check_pairs(n, i, j)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    graph = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    _, comp = connected_components(graph, directed=False)
    comp = comp.astype(np.int64)
    sizes = np.bincount(comp)
    # First occurrence of each component (in sample order) fixes its relabelled id.
    first = np.full(sizes.size, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n, dtype=np.int64))
    multi = np.flatnonzero(sizes >= 2)
    new_id = np.full(sizes.size, -1, dtype=np.int64)
    new_id[multi[np.argsort(first[multi], kind="stable")]] = np.arange(multi.size)
    return new_id[comp]


def _check_cluster(cluster: Any) -> np.ndarray:
    c = np.asarray(cluster)
    if c.ndim != 1 or (c.size and not np.issubdtype(c.dtype, np.integer)):
        raise InputError(
            f"cluster: expected a 1-D integer array (component id per sample, -1 = no pair), "
            f"found dtype {c.dtype} shape {c.shape}"
        )
    c = c.astype(np.int64, copy=False)
    if c.size and c.min() < -1:
        raise InputError(f"cluster: ids must be >= -1, found {c.min()}")
    return c


def keep_count(n: int, t_u: int, rule: str = DRCDownParams.rule) -> int:
    """How many members a cluster of size ``n`` keeps under ``rule``.

    reference: ``max(t_u, n // 2)`` when n > t_u; paper: the same when n / 2 > t_u.
    """
    if rule == "reference":
        return max(t_u, n // 2) if n > t_u else n
    return max(t_u, n // 2) if n / 2 > t_u else n


def downsample(
    cluster: np.ndarray,
    params: DRCDownParams = DRCDownParams(),
    seed: int = 0,
    epoch: int = 0,
) -> np.ndarray:
    """Sorted indices kept by DRCDown's downsampling of the given clusters.

    Samples with cluster id -1 are always kept; a cluster keeps ``keep_count(n, T_u,
    rule)`` members (``params``: :class:`DRCDownParams`) drawn uniformly without replacement by a numpy Generator seeded with
    ``(seed, epoch)``, so the same (seed, epoch) always gives the same subset.
    """
    c = _check_cluster(cluster)
    t_u, rule = params.T_u, params.rule  # validated by DRCDownParams
    seed = check_int(seed, "seed", minimum=0)
    epoch = check_int(epoch, "epoch", minimum=0)
    rng = np.random.default_rng([seed, epoch])
    keep = np.ones(c.size, dtype=bool)
    if c.size == 0 or c.max() < 0:
        return np.arange(c.size, dtype=np.int64)
    sizes = np.bincount(c[c >= 0])
    big = [k for k in np.flatnonzero(sizes) if keep_count(int(sizes[k]), t_u, rule) < sizes[k]]
    if big:
        order = np.argsort(c, kind="stable")
        starts = np.searchsorted(c[order], np.asarray(big), side="left")
        for k, s in zip(big, starts, strict=True):
            members = order[s : s + sizes[k]]
            n_keep = keep_count(int(sizes[k]), t_u, rule)
            drop = rng.permutation(members)[n_keep:]
            keep[drop] = False
    return np.flatnonzero(keep).astype(np.int64)


def cluster_stats(cluster: np.ndarray, kept: np.ndarray | None = None) -> dict[str, float | int]:
    """Cluster-size diagnostics of the samples ``kept`` (all samples when None).

    Every sample in no pair counts as a cluster of size 1, so the m clusters k_1..k_m are
    the diverse draws of the paper's bound. Keys: ``n_samples`` (all), ``n_kept``,
    ``kept_fraction``, ``m`` (clusters incl. singletons), ``n_clusters`` (size >= 2),
    ``n_singletons``, ``size_mean``, ``size_max``, ``size_k2_over_k`` (sum k^2 / sum k),
    ``size_cv`` (std / mean of k over the m clusters), ``cluster_size_mean`` (mean over
    clusters of size >= 2; 0 when none).
    """
    c = _check_cluster(cluster)
    n = int(c.size)
    if kept is None:
        sel = c
    else:
        k = np.asarray(kept)
        if k.ndim != 1 or (k.size and not np.issubdtype(k.dtype, np.integer)):
            raise InputError(f"kept: expected a 1-D integer index array, found shape {k.shape}")
        if k.size and (k.min() < 0 or k.max() >= n):
            raise InputError(f"kept: indices must lie in [0, {n}), found [{k.min()}, {k.max()}]")
        sel = c[k]
    singles = int(np.count_nonzero(sel < 0))
    multi = np.bincount(sel[sel >= 0]) if np.any(sel >= 0) else np.zeros(0, dtype=np.int64)
    multi = multi[multi > 0]
    sizes = np.concatenate([np.ones(singles, dtype=np.int64), multi]).astype(np.float64)
    m = int(sizes.size)
    total = float(sizes.sum())
    mean = total / m if m else 0.0
    return {
        "n_samples": n,
        "n_kept": int(sel.size),
        "kept_fraction": float(sel.size / n) if n else 0.0,
        "m": m,
        "n_clusters": int(np.count_nonzero(multi >= 2)),
        "n_singletons": singles,
        "size_mean": mean,
        "size_max": int(sizes.max()) if m else 0,
        "size_k2_over_k": float((sizes**2).sum() / total) if total else 0.0,
        "size_cv": float(sizes.std() / mean) if mean else 0.0,
        "cluster_size_mean": float(multi.mean()) if multi.size else 0.0,
    }


__all__ = ["RULES", "cluster_stats", "connected_clusters", "downsample", "keep_count"]
