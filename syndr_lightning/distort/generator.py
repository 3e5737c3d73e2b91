"""Generate a KADID-style distorted set: ``<ref>_<TT>_<LL>.png`` plus a manifest CSV.

Resumable: an output that exists is finished (every PNG is written to a temporary file and
renamed), so a rerun skips it. The manifest (``ref, type, level, path, seed``; ``path``
relative to the output folder) is rewritten atomically at the end, every
``MANIFEST_EVERY_S`` seconds, and when the run is interrupted.

Start-up is kept light: this module imports neither torch nor pandas. Worker processes
import torch themselves; this process imports it only for a device (named, or a GPU that
may be present), and pandas only to return :func:`generate`'s DataFrame.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import multiprocessing as mp
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from syndr_lightning.distort.png import encode_png_rgb
from syndr_lightning.distort.spec import (
    ALL_LEVELS,
    ALL_TYPES,
    check_level,
    check_type,
    derive_seed,
    spec,
)
from syndr_lightning.utils.errors import InputError
from syndr_lightning.utils.images import image_size, read_rgb
from syndr_lightning.utils.io import atomic_open
from syndr_lightning.utils.progress import progress as progress_bar

if TYPE_CHECKING:
    import pandas as pd
    import torch

MANIFEST_COLUMNS: tuple[str, ...] = ("ref", "type", "level", "path", "seed")
MANIFEST_NAME = "manifest.csv"
MANIFEST_EVERY_S = 30.0
UNIT_JOBS = 8
PNG_COMPRESS_LEVEL = 1  # zlib level 1, RLE strategy, Up filter: see distort/png.py
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/proc/driver/nvidia/version")


@dataclass(frozen=True)
class Job:
    """One output image."""

    ref: str
    ref_path: str
    dist_type: int
    level: int
    seed: int
    out: str


def output_name(ref_id: str, dist_type: int, level: int) -> str:
    """KADID's naming: ``<ref>_<TT>_<LL>.png``."""
    return f"{ref_id}_{check_type(dist_type):02d}_{check_level(level):02d}.png"


def load_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``H x W x 3`` uint8 RGB, with a clear error when unreadable."""
    return read_rgb(Path(path), error=InputError, what="reference image")


def save_png(img: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write an 8-bit RGB PNG atomically (temporary file, then rename)."""
    data = encode_png_rgb(img, PNG_COMPRESS_LEVEL)
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def _check_list(values: Iterable[int] | int, check, what: str) -> list[int]:
    if isinstance(values, (int, np.integer)):
        values = [int(values)]
    try:
        out = [check(v) for v in values]
    except TypeError as exc:
        raise InputError(f"{what} must be a list of integers, got {values!r}") from exc
    if not out:
        raise InputError(f"{what} must not be empty")
    return sorted(set(out))


def _row(job: Job) -> dict[str, object]:
    return {
        "ref": job.ref,
        "type": job.dist_type,
        "level": job.level,
        "path": Path(job.out).name,
        "seed": job.seed,
    }


def _distort_image(img: np.ndarray, dist_type: int, level: int, seed: int, **kwargs: Any):
    """:func:`syndr_lightning.distort.core.distort_image` (imported lazily with torch)."""
    from syndr_lightning.distort.core import distort_image as _distort

    return _distort(img, dist_type, level, seed, **kwargs)


def default_workers() -> int:
    """Worker processes by default: every CPU this process may use, 0 (in-process) on one."""
    from syndr_lightning.utils.cpus import usable_cpus

    n = usable_cpus()
    return n if n > 1 else 0


def _gpu_possible() -> bool:
    """False when no GPU driver is visible, so torch need not be imported to ask CUDA."""
    return "torch" in sys.modules or any(os.path.exists(p) for p in _GPU_NODES)


def _run_unit(jobs: Sequence[Job], denoiser: str | None) -> list[dict[str, object]]:
    """Make every job of one reference image (worker side)."""
    img = load_rgb(jobs[0].ref_path)
    rows = []
    for job in jobs:
        out = _distort_image(img, job.dist_type, job.level, job.seed, denoiser=denoiser)
        save_png(out, job.out)
        rows.append(_row(job))
    return rows


def _init_worker() -> None:
    """One compute thread per worker (torch reads ``OMP_NUM_THREADS`` when imported)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)


def _mp_context() -> mp.context.BaseContext:
    """How worker processes start.

    A caller that has not imported torch (the ``syndr distort`` command) forks: the
    workers start at once from a light process, and import torch only for a type that
    needs it (see :func:`~syndr_lightning.distort.core.distort_image`). Once torch is imported (a library caller may hold OpenMP threads or a CUDA
    context, which a plain ``fork`` must not inherit) a ``forkserver`` with torch and the
    distortion code preloaded starts them (``spawn`` where there is no forkserver).
    """
    methods = mp.get_all_start_methods()
    if "torch" not in sys.modules and "fork" in methods:
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, "syndr_lightning.distort.ops_torch"])
        return ctx
    return mp.get_context("spawn")


def _read_manifest(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(
                    f"existing manifest {path} lacks columns {missing}; expected "
                    f"{list(MANIFEST_COLUMNS)}. Use another --out or delete the file"
                )
            return [
                {
                    "ref": r["ref"],
                    "type": int(r["type"]),
                    "level": int(r["level"]),
                    "path": r["path"],
                    "seed": int(r["seed"]),
                }
                for r in reader
            ]
    except (csv.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot parse existing manifest {path}: {exc}; delete it to rebuild"
        ) from exc


def _write_manifest(
    out_dir: Path, name: str, old: list[dict[str, object]], jobs: Sequence[Job]
) -> list[dict[str, object]]:
    """Rewrite the manifest atomically: earlier rows plus this run's jobs, where the file exists."""
    by_path: dict[str, dict[str, object]] = {}
    for row in [*old, *(_row(j) for j in jobs)]:
        by_path.pop(str(row["path"]), None)  # the later row wins, in its later place
        by_path[str(row["path"])] = row
    rows = [r for p, r in by_path.items() if (out_dir / p).exists()]
    rows.sort(key=lambda r: (str(r["ref"]), int(r["type"]), int(r["level"])))  # type: ignore[call-overload]
    with atomic_open(out_dir / name, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def generate(
    refs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    types: Iterable[int] = ALL_TYPES,
    levels: Iterable[int] = ALL_LEVELS,
    seed: int = 0,
    workers: int = 0,
    progress: bool = True,
    *,
    denoiser: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 16,
    manifest_name: str = MANIFEST_NAME,
) -> pd.DataFrame:
    """Distort every reference with every (type, level); return the manifest of this request.

    ``workers`` CPU processes (0 = in this process; :func:`default_workers` = every core).
    With a ``device`` (default: ``cuda`` when present) the torch types run batched on it
    in this process, ``batch_size`` same-sized references at a time, while the workers run
    codecs and sequential types; with no device and no GPU all types run in the workers,
    in units of up to ``UNIT_JOBS`` outputs of one reference. ``denoiser``: DnCNN
    checkpoint for type 15. Returns columns ``ref, type, level, path, seed`` with absolute
    ``path``; the CSV ``<out_dir>/<manifest_name>`` keeps earlier rows and stores paths
    relative to it. Same ``seed`` -> same bytes; a rerun skips finished files (mixing
    seeds in one folder is refused).
    """
    import pandas as pd

    rows = generate_rows(
        refs,
        out_dir,
        types,
        levels,
        seed,
        workers,
        progress,
        denoiser=denoiser,
        device=device,
        batch_size=batch_size,
        manifest_name=manifest_name,
    )
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def generate_rows(
    refs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    types: Iterable[int] = ALL_TYPES,
    levels: Iterable[int] = ALL_LEVELS,
    seed: int = 0,
    workers: int = 0,
    progress: bool = True,
    *,
    denoiser: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 16,
    manifest_name: str = MANIFEST_NAME,
) -> list[dict[str, object]]:
    """:func:`generate` returning its rows as dicts (no pandas import)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InputError(f"workers must be an integer >= 0, got {workers!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be an integer, got {seed!r}")
    type_list = _check_list(types, check_type, "types")
    level_list = _check_list(levels, check_level, "levels")
    ref_paths = [Path(r) for r in refs]
    if not ref_paths:
        raise InputError("no reference images given; pass at least one image file")
    for p in ref_paths:
        if not p.is_file():
            raise InputError(f"reference image not found: {p}")
        h, w = image_size(
            p, error=InputError, what="reference image"
        )  # a header read: no work is started first
        if h < 2 or w < 2:
            raise InputError(
                f"reference image {str(p)!r} is {w}x{h} pixels; the distortions need at least "
                "2x2 - remove it from the references"
            )
    ids: dict[str, Path] = {}
    for p in ref_paths:
        if p.stem in ids:
            raise InputError(
                f"two references share the id {p.stem!r}: {ids[p.stem]} and {p}; rename one"
            )
        ids[p.stem] = p
    if denoiser is not None and not Path(denoiser).is_file():
        raise InputError(f"DnCNN checkpoint not found: {denoiser}")
    if device is not None:
        from syndr_lightning.utils.device import resolve_device

        resolve_device(device)  # a bad name fails here, before any work
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out} is an existing file; pass a folder path")
    out.mkdir(parents=True, exist_ok=True)
    old = _read_manifest(out / manifest_name)
    old_seeds = {str(r["path"]): int(r["seed"]) for r in old}  # type: ignore[call-overload]

    jobs: list[Job] = []
    for ref_id, p in ids.items():
        for t in type_list:
            for lv in level_list:
                s = derive_seed(seed, ref_id, t, lv)
                name = output_name(ref_id, t, lv)
                if name in old_seeds and old_seeds[name] != s and (out / name).exists():
                    raise InputError(
                        f"{out / name} was made with seed {old_seeds[name]}, this run would use {s} "
                        f"(--seed {seed}); use the same --seed or another --out folder"
                    )
                jobs.append(Job(ref_id, str(p), t, lv, s, str(out / name)))
    pending = [j for j in jobs if not Path(j.out).exists()]
    den = str(denoiser) if denoiser is not None else None

    # Workers start before this process touches torch (see _mp_context), so a device is
    # resolved after the pool exists; the torch types go to it only when it is used here.
    pool = None
    if workers > 0 and pending:
        pool = cf.ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_init_worker)
    try:
        dev = None
        if device is not None or _gpu_possible():
            from syndr_lightning.utils.device import resolve_device

            dev = resolve_device(device)
        # a device the caller named is used here; unset, only a GPU is worth the batching
        batch_here = dev is not None and (device is not None or dev.type == "cuda")
        batched = [j for j in pending if batch_here and spec(j.dist_type).backend == "torch"]
        batched_ids = {id(j) for j in batched}
        per_ref: dict[str, list[Job]] = defaultdict(list)
        for j in pending:
            if id(j) not in batched_ids:
                per_ref[j.ref].append(j)
        # units of at most UNIT_JOBS outputs of one reference: decoded once per unit, and
        # enough units to keep every worker busy
        units = [
            js[i : i + UNIT_JOBS] for js in per_ref.values() for i in range(0, len(js), UNIT_JOBS)
        ]
        futures = [pool.submit(_run_unit, unit, den) for unit in units] if pool else []
        _drive(
            out,
            manifest_name,
            old,
            jobs,
            pending,
            units,
            futures,
            batched,
            dev,
            batch_size,
            den,
            progress,
        )
    finally:
        if pool is not None:
            # on an error or Ctrl-C, drop the queued units instead of running them
            pool.shutdown(wait=True, cancel_futures=True)
        _write_manifest(out, manifest_name, old, jobs)
    return [{**_row(j), "path": str((out / Path(j.out).name).resolve())} for j in jobs]


def _drive(
    out: Path,
    manifest_name: str,
    old: list[dict[str, object]],
    jobs: list[Job],
    pending: list[Job],
    units: list[list[Job]],
    futures: list[cf.Future],
    batched: list[Job],
    dev: torch.device | None,
    batch_size: int,
    den: str | None,
    progress: bool,
) -> None:
    """Run the batched jobs here and collect the workers' units (or run them inline)."""
    last_write = time.monotonic()
    with progress_bar("distort", len(pending), enabled=progress) as bar:

        def done(new_rows: list[dict[str, object]]) -> None:
            nonlocal last_write
            bar.advance(len(new_rows))
            if time.monotonic() - last_write > MANIFEST_EVERY_S:
                _write_manifest(out, manifest_name, old, jobs)
                last_write = time.monotonic()

        if batched:
            _run_batched(batched, dev, batch_size, done)  # type: ignore[arg-type]
        if futures:
            for fut in cf.as_completed(futures):
                done(fut.result())
        else:
            for unit in units:
                done(_run_unit(unit, den))


def _run_batched(jobs: list[Job], device: torch.device, batch_size: int, done) -> None:
    """Torch types in this process on ``device``: same-sized references batched per (type, level)."""
    if not jobs:
        return
    import torch

    from syndr_lightning.distort.core import distort_batch, to_uint8_image

    by_ref: dict[str, list[Job]] = defaultdict(list)
    for j in jobs:
        by_ref[j.ref].append(j)
    sizes: dict[tuple[int, int], list[str]] = defaultdict(list)
    paths = {j.ref: j.ref_path for j in jobs}
    for ref in by_ref:
        sizes[image_size(paths[ref], error=InputError)].append(ref)
    for refs in sizes.values():
        for start in range(0, len(refs), max(1, batch_size)):
            chunk = refs[start : start + max(1, batch_size)]
            imgs = {r: load_rgb(paths[r]) for r in chunk}
            groups: dict[tuple[int, int], list[Job]] = defaultdict(list)
            for r in chunk:
                for j in by_ref[r]:
                    groups[(j.dist_type, j.level)].append(j)
            for (t, lv), group in groups.items():
                x = torch.stack([torch.from_numpy(imgs[j.ref]).permute(2, 0, 1) for j in group])
                x = x.to(device=device, dtype=torch.float32) / 255.0
                y = distort_batch(x, t, lv, [j.seed for j in group])
                for j, img in zip(group, to_uint8_image(y), strict=True):
                    save_png(img, j.out)
                done([_row(j) for j in group])
