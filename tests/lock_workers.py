"""Functions run in spawned processes by test_locking (a light module: no torch import)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from syndr_lightning.data.cache import ImageCache
from syndr_lightning.utils.io import atomic_open
from syndr_lightning.utils.locking import build_once


def _all_ready(folder: Path, n: int) -> None:
    """Start together: wait until ``n`` processes have arrived (so the builds overlap)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(folder.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def build_value(folder: str, n: int) -> str:
    """build_once of one key; the build is slow and logs each time it runs."""
    root = Path(folder)
    result = root / "result.txt"

    def load() -> str | None:
        return result.read_text() if result.is_file() else None

    def build() -> str:
        with open(root / "builds.log", "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        with atomic_open(result) as fh:
            fh.write("built by " + str(os.getpid()))
        return load() or ""

    _all_ready(root / "ready", n)
    return build_once(root / ".key.lock", load, build, heartbeat_s=0.05, stale_s=5.0)


def image_cache(paths: list[str], folder: str, n: int) -> bytes:
    """Open (or build) one image cache; its pixels and whether this process built it."""
    _all_ready(Path(folder).parent / "ready", n)
    cache = ImageCache.open_or_build(paths, folder, progress=False)
    return b"".join(cache.get(p).tobytes() for p in paths) + str(cache.built).encode()


def upsampled_set(data: dict, cache_root: str, n: int) -> tuple[str, str, bool]:
    """Build (or reuse) one DDCUp set; its folder, manifest CSV and whether it was reused."""
    from syndr_lightning.data.datasets import get_loader, load_dataset
    from syndr_lightning.data.upsample import UpsampleSpec, build_upsampled_set
    from syndr_lightning.reshape.params import DDCUpParams

    spec = UpsampleSpec(
        (1, 3),
        DDCUpParams(
            encoder="tiny_cnn", encoder_weights="none", encoder_crop=32, select_candidates=False
        ),
    )
    manifest = load_dataset("kadid10k", data["kadid"], types=[1, 3])
    refs = get_loader("kadid10k")(data["kadid"], types=[1, 3]).references()
    cands = get_loader("kadis700k")(data["kadis"]).references()
    _all_ready(Path(cache_root).parent / "ready", n)
    res = build_upsampled_set(manifest, refs, cands, cache_root, spec, progress=False)
    return str(res.directory), res.manifest.to_csv(index=False), res.reused
