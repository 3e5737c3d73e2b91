"""DRCDown's pair search split over the ranks of a ``torch.distributed`` process group.

Every rank holds the full feature matrix (e.g. after :func:`all_gather_rows` of a sharded
feature pass) and searches one contiguous, equal-work range of label-sorted rows against
all later samples (:func:`~syndr_lightning.reshape.pairs.similar_pairs_slice`); the pairs
are then gathered with a padded ``all_gather``, so every rank ends with exactly the pairs
(and order) that the single-process :func:`~syndr_lightning.reshape.similar_pairs` returns.
Clustering and downsampling are O(N) and deterministic given ``(seed, epoch)``, so every
rank repeats them and holds the same subset without a broadcast.

Works with gloo (CPU tensors) and NCCL (tensors on the rank's current CUDA device).
Without an initialised process group, or with one rank, it is the single-process search.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.distributed as dist

from syndr_lightning.reshape.drcdown import DRCDownResult, drcdown_from_pairs
from syndr_lightning.reshape.pairs import balanced_slices, prepare, similar_pairs_slice
from syndr_lightning.reshape.params import DRCDownParams
from syndr_lightning.utils.errors import InputError


def world_of(group: dist.ProcessGroup | None) -> tuple[int, int]:
    """(rank, world size) in ``group``; (0, 1) without an initialised process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def _comm_device(group: dist.ProcessGroup | None) -> torch.device:
    """The device collectives of ``group`` need: the current CUDA device for NCCL."""
    # "nccl", or a combined backend such as "cpu:gloo,cuda:nccl": use CUDA tensors.
    if "nccl" in str(dist.get_backend(group)):
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_gather_padded(local: torch.Tensor, group: dist.ProcessGroup | None) -> list[torch.Tensor]:
    """All-gather tensors whose first dimension differs per rank (pad, gather, trim)."""
    world = dist.get_world_size(group)
    dev = _comm_device(group)
    size = torch.tensor([local.shape[0]], dtype=torch.int64, device=dev)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    if longest == 0:
        return [local[:0].cpu() for _ in range(world)]
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=dev)
    padded[: local.shape[0]] = local.to(dev)
    out = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(out, padded, group=group)
    return [t[:c].cpu() for t, c in zip(out, counts, strict=True)]


def _check_same_inputs(
    features: np.ndarray,
    labels: np.ndarray,
    t_f: float,
    t_q: float,
    group: dist.ProcessGroup | None,
) -> None:
    """Raise on EVERY rank when the ranks were handed different inputs (no deadlock)."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    probe = torch.tensor(
        [
            float(features.shape[0]),
            float(features.shape[1]),
            t_f,
            t_q,
            float(y.sum()),
            float(y @ y),
        ],
        dtype=torch.float64,
    )
    seen = _all_gather_padded(probe[None, :], group)
    ref = seen[0][0]
    for rank, other in enumerate(seen):
        if not torch.allclose(other[0], ref, rtol=1e-12, atol=0.0):
            raise InputError(
                "distributed pair search: every rank must pass the same features, labels, "
                f"t_f and t_q; rank 0 has (N, d, t_f, t_q, sum y, sum y^2) = {ref.tolist()}, "
                f"rank {rank} has {other[0].tolist()}. Gather the features on every rank "
                "first (all_gather_rows) and pass identical thresholds."
            )


def distributed_similar_pairs(
    features: np.ndarray,
    labels: np.ndarray,
    t_f: float = DRCDownParams.T_f,
    t_q: float = DRCDownParams.T_q,
    backend: str = "auto",
    device: str | torch.device | None = None,
    block_rows: int | None = None,
    group: dist.ProcessGroup | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Similar pairs of the full ``[N, d]`` features, the search split over ``group``'s ranks.

    Call it on every rank with identical ``features`` and ``labels``. Each rank searches
    the label-sorted rows ``balanced_slices(labels, world, t_q)[rank]`` against all later
    samples; the pairs are all-gathered. Returns int64 ``(i, j)``, i < j, sorted by (i, j):
    identical to ``similar_pairs`` on one process.
    """
    rank, world = world_of(group)
    plan = prepare(features, labels)
    if world == 1:
        return similar_pairs_slice(plan, None, 0, plan.n, t_f, t_q, backend, device, block_rows)
    _check_same_inputs(plan.features, labels, float(t_f), float(t_q), group)
    start, stop = balanced_slices(plan.labels_sorted, world, t_q)[rank]
    i, j = similar_pairs_slice(plan, None, start, stop, t_f, t_q, backend, device, block_rows)
    local = (
        torch.from_numpy(np.stack([i, j], axis=1))
        if i.size
        else torch.empty((0, 2), dtype=torch.int64)
    )
    parts = _all_gather_padded(local, group)
    both = torch.cat(parts).numpy()
    gi, gj = both[:, 0].copy(), both[:, 1].copy()
    order = np.lexsort((gj, gi))
    return gi[order], gj[order]


def distributed_drcdown(
    features: np.ndarray,
    labels: np.ndarray,
    params: DRCDownParams = DRCDownParams(),
    *,
    seed: int = 0,
    epoch: int = 0,
    device: str | torch.device | None = None,
    group: dist.ProcessGroup | None = None,
) -> DRCDownResult:
    """:func:`~syndr_lightning.reshape.drcdown` with the pair search split over the ranks.

    Every rank returns the same result (same pairs, clusters and seeded subset).
    """
    t0 = time.perf_counter()
    i, j = distributed_similar_pairs(
        features,
        labels,
        t_f=params.T_f,
        t_q=params.T_q,
        backend=params.backend,
        device=device,
        group=group,
    )
    n = int(np.asarray(features).shape[0])
    return drcdown_from_pairs(
        n, i, j, params, seed=seed, epoch=epoch, seconds_pairs=time.perf_counter() - t0
    )


def all_gather_rows(
    rows: torch.Tensor, index: torch.Tensor, n: int, group: dist.ProcessGroup | None = None
) -> np.ndarray:
    """Assemble a sharded feature pass into the full ``[n, d]`` matrix on every rank.

    ``rows[k]`` is the feature of sample ``index[k]``; the ranks' indices together must
    cover ``0..n-1`` (duplicates, as ``DistributedSampler`` pads with, are fine). Returns a
    float32 numpy array; raises ``InputError`` naming the first sample no rank computed.
    """
    if rows.ndim != 2 or index.ndim != 1 or rows.shape[0] != index.shape[0]:
        raise InputError(
            f"all_gather_rows: expected rows [k, d] and index [k], found {tuple(rows.shape)} "
            f"and {tuple(index.shape)}; pass one index per feature row"
        )
    _, world = world_of(group)
    rows32 = rows.detach().to(torch.float32)
    idx = index.detach().to(torch.int64)
    width = rows32.shape[1]
    if world == 1:
        parts_rows, parts_idx = [rows32.cpu()], [idx.cpu()]
    else:
        # A rank with no rows may not know d: the ranks agree on the widest row first.
        mine = torch.tensor([[width if rows32.shape[0] else 0]], dtype=torch.int64)
        width = int(torch.cat(_all_gather_padded(mine, group)).max())
        if rows32.shape[0] == 0:
            rows32 = rows32.reshape(0, width)
        parts_rows = _all_gather_padded(rows32, group)
        parts_idx = _all_gather_padded(idx, group)
    all_idx = torch.cat(parts_idx).numpy()
    if all_idx.size and (all_idx.min() < 0 or all_idx.max() >= n):
        raise InputError(
            f"all_gather_rows: sample indices must lie in [0, {n}), found "
            f"[{all_idx.min()}, {all_idx.max()}]; pass the dataset row indices of the batch"
        )
    out = np.zeros((n, width), dtype=np.float32)
    seen = np.zeros(n, dtype=bool)
    offset = 0
    for part in parts_rows:
        k = part.shape[0]
        sel = all_idx[offset : offset + k]
        out[sel] = part.numpy()
        seen[sel] = True
        offset += k
    if not seen.all():
        missing = int(np.flatnonzero(~seen)[0])
        raise InputError(
            f"all_gather_rows: no rank computed the feature of sample {missing} (of {n}); "
            "the feature pass must visit every sample (use a sampler without drop_last)"
        )
    return out
