"""Benchmark: the cost of checking the caches' per-block digests (``utils/integrity.py``).

Two KADID-sized caches are written with random bytes and read the way training reads them:

* the DRCDown crop cache (10,125 crops of 224 px, 1.42 GiB): every crop read once (a copy
  per crop, as the feature pass does), with and without the check a reusing pass runs
  first (``CropCache.verify``: one XXH3-64 digest per crop);
* the decoded-image cache (10,125 images of 512x384, KADID-10k's size, 5.6 GiB): every
  image read once (``ImageCache.get``), with and without the whole-cache check run when
  a cache is opened (``ImageCache.first_bad_block``).

For comparison the previous check (the sum of each block's 64-bit words, which misses
reordered words) is timed on the same crop cache. Each measurement is repeated and the
best pass kept (warm page cache: the check then costs CPU only; from a cold disk the read
itself dominates and the ratio is smaller).

    .venv/bin/python experiments/bench/bench_cache_check.py [--n 10125] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from syndr_lightning.data.cache import CACHE_VERSION, ImageCache
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


def fill(mm: np.ndarray, rng: np.random.Generator) -> None:
    """Random bytes into a writable memmap, in 64 MiB pieces."""
    flat = mm.reshape(-1)
    step = 1 << 26
    for a in range(0, flat.size, step):
        b = min(flat.size, a + step)
        flat[a:b] = np.frombuffer(rng.bytes(b - a), dtype=np.uint8)
    mm.flush()


def crop_cache(tmp: str, n: int, s: int, repeat: int, rng: np.random.Generator) -> None:
    """Time reading a crop cache with and without ``CropCache.verify``."""
    paths = [f"{tmp}/img{i:05d}.png" for i in range(n)]
    cache = CropCache.__new__(CropCache)  # the file layout of CropCache, no images needed
    cache.paths, cache.size, cache.resize = paths, s, None
    cache.file = Path(tmp) / f"crops_bench_{n}x{s}.u8"
    mm = np.memmap(cache.file, dtype=np.uint8, mode="w+", shape=(n, s, s, 3))
    fill(mm, rng)
    write_crcs(cache.file, block_crcs(mm))
    del mm

    def read_all() -> None:
        arr = cache.open()
        for i in range(n):
            np.array(arr[i])

    def verify_then_read() -> None:
        assert cache.verify()
        read_all()

    def word_sums() -> None:  # the previous check, for comparison
        arr = cache.open().reshape(n, -1)
        for a in range(0, n, 256):
            np.add.reduce(arr[a : a + 256].view(np.uint64), axis=1, dtype=np.uint64)

    read_all()  # warm the page cache
    plain = best(read_all, repeat)
    checked = best(verify_then_read, repeat)
    verify_only = best(cache.verify, repeat)
    old = best(word_sums, repeat)
    print(f"crop cache: {n} crops of {s}px ({n * s * s * 3 / 2**30:.2f} GiB)")
    print(f"  read every crop:            {plain:8.3f} s")
    print(f"  verify, then read:          {checked:8.3f} s  (ratio {checked / plain:.2f})")
    print(f"  verify alone (XXH3-64):     {verify_only:8.3f} s")
    print(f"  previous word sums alone:   {old:8.3f} s")
    cache.file.unlink()


def image_cache(
    tmp: str, n: int, hw: tuple[int, int], repeat: int, rng: np.random.Generator
) -> None:
    """Time reading an image cache with and without its whole-cache check."""
    h, w = hw
    size = h * w * 3
    data = Path(tmp) / "imgcache-bench.u8"
    mm = np.memmap(data, dtype=np.uint8, mode="w+", shape=(n, size))
    fill(mm, rng)
    sums = block_crcs(mm)
    del mm
    paths = [f"{tmp}/img{i:05d}.png" for i in range(n)]  # never opened: pixels come from data
    index = {
        "version": CACHE_VERSION,
        "data_file": data.name,
        "paths": paths,
        "identity": ["-"] * n,
        "shapes": [[h, w]] * n,
        "offsets": [i * size for i in range(n)],
        "total_bytes": n * size,
        "checksums": [str(int(c)) for c in sums],
    }
    index_file = Path(tmp) / "imgcache-bench.json"
    index_file.write_text(json.dumps(index))

    def read_all() -> None:  # a fresh cache object: every first read is checked
        cache = ImageCache(index_file, index)
        for i in range(n):
            cache[i]

    def copies_only() -> None:
        mm = np.memmap(data, dtype=np.uint8, mode="r", shape=(n, size))
        for i in range(n):
            np.array(mm[i])

    def verify() -> None:
        assert ImageCache(index_file, index).first_bad_block() is None

    copies_only()  # warm the page cache
    copy = best(copies_only, repeat)
    read = best(read_all, repeat)
    check = best(verify, repeat)
    print(f"image cache: {n} images of {w}x{h} ({n * size / 2**30:.2f} GiB)")
    print(f"  copy every image:           {copy:8.3f} s")
    print(f"  get every image (checked):  {read:8.3f} s  (ratio {read / copy:.2f})")
    print(f"  whole check when opened:    {check:8.3f} s  (ratio {check / copy:.2f})")
    one = np.array(np.memmap(data, dtype=np.uint8, mode="r", shape=(n, size))[0])
    digest = best(lambda: [block_checksum(one) for _ in range(200)], repeat) / 200
    print(f"  digest of one image:        {digest * 1e3:8.3f} ms")
    data.unlink()


def main() -> int:
    """Print seconds with and without checking, and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="blocks (KADID-10k: 10,125)")
    parser.add_argument("--size", type=int, default=224, help="crop size of the crop cache")
    parser.add_argument("--image", type=int, nargs=2, default=(384, 512), metavar=("H", "W"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 blocks")
    args = parser.parse_args()
    n = args.n if args.n is not None else (1_000 if args.quick else 10_125)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        crop_cache(tmp, n, args.size, args.repeat, rng)
        image_cache(tmp, n, tuple(args.image), args.repeat, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
