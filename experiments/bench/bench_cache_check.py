"""Benchmark: the cost of checking the caches' block checksums (``utils/integrity.py``).

A KADID-sized DRCDown crop cache (10,125 crops of 224 px, 1.5 GB, memory-mapped) is
written, then read crop by crop the way the feature pass reads it (a copy per crop), with
and without the check that a reusing pass runs first (``CropCache.verify``: one checksum per crop, the
sum of its 64-bit words). The decoded-image cache checks each image on its first read in
a process; that cost is measured as the checksum of the copied image against the copy
alone (KADID's 512x384).
Each measurement is repeated and the best pass is kept (warm page cache: the check then
costs CPU only; from a cold disk the read itself dominates and the ratio is smaller).

    .venv/bin/python experiments/bench/bench_cache_check.py [--n 10125] [--size 224]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from syndr_lightning.reshape.features import CropCache
from syndr_lightning.utils.integrity import block_checksum, block_crcs, write_crcs


def best(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    """Print seconds with and without checking, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_125, help="crops (KADID-10k: 10,125)")
    parser.add_argument("--size", type=int, default=224, help="crop size of the cache")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, s = args.n, args.size
    with tempfile.TemporaryDirectory() as tmp:
        paths = [f"{tmp}/img{i:05d}.png" for i in range(n)]
        cache = CropCache.__new__(CropCache)  # the file layout of CropCache, no images needed
        cache.paths, cache.size, cache.resize = paths, s, None
        cache.file = Path(tmp) / f"crops_bench_{n}x{s}.u8"
        mm = np.memmap(cache.file, dtype=np.uint8, mode="w+", shape=(n, s, s, 3))
        rng = np.random.default_rng(0)
        for a in range(0, n, 512):
            mm[a : a + 512] = rng.integers(0, 256, mm[a : a + 512].shape, dtype=np.uint8)
        mm.flush()
        write_crcs(cache.file, block_crcs(mm))
        del mm

        def read_all() -> None:
            arr = cache.open()
            for i in range(n):
                np.array(arr[i])

        def verify_then_read() -> None:
            assert cache.verify()
            read_all()

        read_all()  # warm the page cache
        plain = best(read_all, args.repeat)
        checked = best(verify_then_read, args.repeat)
        print(f"crop cache: {n} crops of {s}px ({n * s * s * 3 / 2**30:.2f} GiB)")
        print(f"  read every crop:            {plain:8.3f} s")
        print(f"  verify, then read:          {checked:8.3f} s  (ratio {checked / plain:.2f})")

        image = rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)
        flat = np.ascontiguousarray(image).reshape(-1)
        k = min(n, 2000)

        def copies() -> None:
            for _ in range(k):
                np.array(flat)

        def checked_copies() -> None:
            for _ in range(k):
                block_checksum(np.array(flat))

        verify_only = best(cache.verify, args.repeat)
        print(f"  verify alone:               {verify_only:8.3f} s")
        copy = best(copies, args.repeat)
        crc = best(checked_copies, args.repeat)
        print(f"image cache: first read of a 512x384 image, {k} reads")
        print(f"  copy only:                  {copy / k * 1e3:8.3f} ms/image")
        print(
            f"  copy + checksum:            {crc / k * 1e3:8.3f} ms/image  (ratio {crc / copy:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
