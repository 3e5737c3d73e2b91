#!/usr/bin/env python
"""Benchmark: how DRCDown's pair search splits over ranks (reshape.distributed).

For W = 2, 4, 8 ranks the label-sorted rows are cut into W slices, either by
``balanced_slices`` (equal work: each row's label window) or naively into equal row
counts, and each rank's ``similar_pairs_slice`` is timed one after the other in this
process (one thread, so each time is one rank's work). The reference is the whole search
in one call. Reported: the slowest rank, the speed-up it allows (reference / slowest),
the imbalance (slowest / mean) and that the union of the slices is the reference's pair
set. Without --quick it also runs the real thing: 2 gloo processes through
``distributed_similar_pairs`` (times measured inside the ranks, gather included).

    python experiments/bench/bench_scaling.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from syndr_lightning.fakedata.features import geometric_clusters  # noqa: E402
from syndr_lightning.reshape import balanced_slices, prepare, similar_pairs_slice  # noqa: E402
from syndr_lightning.reshape.distributed import distributed_similar_pairs  # noqa: E402

T_F, T_Q = 0.1, 1.0


def _naive_slices(n: int, world: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, world + 1).round().astype(int)
    return [(int(edges[k]), int(edges[k + 1])) for k in range(world)]


def _search(plan, a: int, b: int, repeats: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Best-of-``repeats`` time of one slice search (the CPU is shared: take the minimum)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        i, j = similar_pairs_slice(plan, None, a, b, T_F, T_Q, "torch", "cpu")
        best = min(best, time.perf_counter() - t)
    return best, i, j


def _timed_slices(
    plan, slices: list[tuple[int, int]], repeats: int
) -> tuple[list[float], set[tuple[int, int]]]:
    times: list[float] = []
    pairs: set[tuple[int, int]] = set()
    for a, b in slices:
        secs, i, j = _search(plan, a, b, repeats)
        times.append(secs)
        pairs.update(zip(i.tolist(), j.tolist(), strict=True))
    return times, pairs


def ref_uniform_pairs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The single-process pair list (the distributed run must reproduce its length)."""
    plan = prepare(x, y)
    return similar_pairs_slice(plan, None, 0, plan.n, T_F, T_Q, "torch", "cpu")[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank(rank: int, world: int, port: int, n: int, dim: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, y = geometric_clusters(n, dim, 0, torch.device("cpu"))
        dist.barrier()
        t = time.perf_counter()
        i, _ = distributed_similar_pairs(x, y, T_F, T_Q, backend="torch", device="cpu")
        dist.barrier()
        Path(out, f"rank{rank}.txt").write_text(f"{time.perf_counter() - t} {i.size}")
    finally:
        dist.destroy_process_group()


def main() -> int:
    """Print the table; exit non-zero when a split search disagrees with the reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args()
    n, dim = (6_000, 256) if args.quick else (20_000, 512)
    repeats = 2 if args.quick else 3
    torch.set_num_threads(1)
    x, y_uniform = geometric_clusters(n, dim, 0, torch.device("cpu"))
    ok = True
    # Uniform labels give every row about the same label window; skewed labels (most
    # scores low, as in many IQA sets) make equal row counts unequal work.
    for label_kind, y in (("uniform", y_uniform), ("skewed", 10.0 * (y_uniform / 10.0) ** 2)):
        plan = prepare(x, y)
        ref_s, ri, rj = _search(plan, 0, plan.n, repeats)
        ref = set(zip(ri.tolist(), rj.tolist(), strict=True))
        print(
            f"N = {n:,}, d = {dim}, {label_kind} labels, {len(ref):,} pairs; "
            f"reference (one call, 1 thread): {ref_s:.3f} s"
        )
        print()
        print(
            "| ranks | slicing | slowest rank s | speed-up vs reference "
            "| imbalance (max/mean) | same pairs |"
        )
        print("|---|---|---|---|---|---|")
        for world in (2, 4, 8):
            for name, slices in (
                ("balanced", balanced_slices(y, world, T_Q)),
                ("equal rows", _naive_slices(n, world)),
            ):
                times, pairs = _timed_slices(plan, slices, repeats)
                same = pairs == ref
                ok &= same
                slowest = max(times)
                print(
                    f"| {world} | {name} | {slowest:.3f} | {ref_s / slowest:.2f}x "
                    f"| {slowest / float(np.mean(times)):.2f} | {'yes' if same else 'NO'} |"
                )
        print()
    y = y_uniform
    ref_pairs = len(ref_uniform_pairs(x, y))
    if not args.quick:
        t = time.perf_counter()
        ref_uniform_pairs(x, y)  # the same work in one process (prepare + search)
        one_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(_rank, args=(2, _free_port(), n, dim, tmp), nprocs=2, join=True)
            rows = [Path(tmp, f"rank{r}.txt").read_text().split() for r in (0, 1)]
        wall = max(float(r[0]) for r in rows)
        same = all(int(r[1]) == ref_pairs for r in rows)
        ok &= same
        print()
        print(
            f"2 gloo processes, distributed_similar_pairs (prepare + slice + gather): "
            f"{wall:.2f} s vs one process {one_s:.2f} s ({one_s / wall:.2f}x; the 2 cores are "
            f"shared with other work); pair counts {'identical' if same else 'DIFFER'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
