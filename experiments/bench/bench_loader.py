"""Benchmark: image loading with and without the decoded-image cache (``ImageCache``).

Generates 512x384 images (PNG and JPEG, like KADID-10k and KonIQ-10k), then measures
images/s of the straightforward path (PIL decode + RGB convert, every epoch) against
``ImageCache.get`` (memory-mapped uint8), plus the one-time cache build. Each epoch is
repeated and the best pass is kept; ratios are against decoding in the same run.

    .venv/bin/python experiments/bench/bench_loader.py [--quick] [--n 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from syndr_lightning.data.cache import ImageCache, decode_rgb
from syndr_lightning.fakedata.fixtures import degrade, reference_image


def make_images(folder: Path, n: int, ext: str, seed: int = 0) -> list[str]:
    """Write ``n`` textured 512x384 RGB images with suffix ``ext``; return their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = degrade(reference_image(rng, (512, 384)), 2, rng)
        path = folder / f"img{i:05d}.{ext}"
        options = {"quality": 90} if ext == "jpg" else {}
        Image.fromarray(img).save(path, **options)
        paths.append(str(path))
    return paths


def rate(fn: Callable[[str], np.ndarray], paths: list[str], repeats: int) -> float:
    """Best images/s over ``repeats`` passes of ``fn`` over ``paths``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        checksum = 0
        for p in paths:
            checksum += int(fn(p)[0, 0, 0])
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 images per format")
    parser.add_argument("--n", type=int, default=None, help="images per format (default 200)")
    args = parser.parse_args()
    n = args.n or (32 if args.quick else 200)
    repeats = 2 if args.quick else 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("png", "jpg"):
            folder = Path(tmp) / ext
            folder.mkdir()
            paths = make_images(folder, n, ext)
            ref = rate(decode_rgb, paths, repeats)
            start = time.perf_counter()
            cache = ImageCache.open_or_build(paths, Path(tmp) / f"cache_{ext}", progress=False)
            build = n / (time.perf_counter() - start)
            for p in paths[:5]:  # the cache must return exactly the decoded pixels
                assert np.array_equal(cache.get(p), decode_rgb(p))
            cached = rate(cache.get, paths, repeats)
            rows.append((ext.upper(), "decode (reference)", ref, 1.0))
            rows.append((ext.upper(), "cache build (once)", build, build / ref))
            rows.append((ext.upper(), "ImageCache.get", cached, cached / ref))
    print(f"loader: {n} images of 512x384 per format, best of {repeats} passes")
    print(f"{'format':<7}{'method':<22}{'images/s':>12}{'ratio':>9}")
    for fmt, method, value, ratio in rows:
        print(f"{fmt:<7}{method:<22}{value:>12.1f}{ratio:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
