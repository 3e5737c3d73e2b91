"""DRCDown inside the training loop: the per-epoch subset of the original training samples.

Mechanics (see docs/syndr.md):

* Lightning rebuilds the train dataloader at the start of every epoch (with
  ``reload_dataloaders_every_n_epochs=1``) BEFORE ``on_train_epoch_start``. The subset of
  epoch ``e`` is therefore computed lazily, inside ``datamodule.train_indices(e)`` which
  ``train_dataloader()`` calls: at that moment the weights are exactly those at the start
  of epoch ``e``, and the loader, the batch count, the progress bar and the schedulers
  all see the right size.
* :class:`DRCDownSelector` does the work: a feature pass of the current model over the
  original training samples (eval mode, no grad, one centre crop, large batches,
  channels_last and autocast on GPU, an optional uint8 crop cache so later epochs do not
  decode images), then :func:`syndr_lightning.reshape.drcdown` (pairs -> clusters ->
  downsampling, random choices seeded by (seed, epoch)).
* DDP: every rank extracts the features of one shard, the shards are all-gathered, rank
  0 decides and broadcasts the kept indices, so every rank trains on the same subset.
* :class:`DRCDownCallback` logs ``drcdown/*`` every epoch, writes the subset history
  (hash per epoch, per rank) atomically, and keeps that history in checkpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from PIL import Image

from syndr_lightning.reshape._validate import BACKENDS
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.images import read_rgb
from syndr_lightning.utils.io import atomic_open, atomic_path
from syndr_lightning.utils.locking import BuildLock, remove_stale_temporaries
from syndr_lightning.utils.progress import progress as show_progress

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_CACHE_VERSION = 1
log = logging.getLogger(__name__)


def subset_hash(indices: np.ndarray | Sequence[int]) -> str:
    """SHA-256 (hex) of the sorted int64 indices: equal subsets have equal hashes."""
    arr = np.sort(np.asarray(indices, dtype=np.int64))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def hash_metric(digest: str) -> float:
    """The first 24 bits of a hex digest as a float (exact in float32, so loggable)."""
    return float(int(digest[:6], 16))


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed derived from (seed, epoch), stable across runs and platforms."""
    h = hashlib.sha256(f"syndr-epoch:{int(seed)}:{int(epoch)}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


# --------------------------------------------------------------------------- crops


def load_center_crop(path: str, size: int, resize: int | None = None) -> np.ndarray:
    """Decode ``path`` as RGB and return its uint8 ``[size, size, 3]`` centre crop.

    ``resize`` first scales the shorter side to ``resize``; an image whose shorter side
    is still below ``size`` is scaled up to ``size`` (bilinear, aspect kept), as the
    training and evaluation transforms do.
    """
    arr = read_rgb(path, what="image for the DRCDown feature pass")
    h, w = arr.shape[:2]
    short = resize if resize is not None else min(w, h)
    short = max(short, size)
    if short != min(w, h):
        scale = short / min(w, h)
        img = Image.fromarray(arr).resize(
            (max(short, round(w * scale)), max(short, round(h * scale))), Image.BILINEAR
        )
        arr = np.asarray(img, dtype=np.uint8)
    h, w = arr.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(arr[top : top + size, left : left + size])


class _CropDataset(torch.utils.data.Dataset):
    """Centre crops (uint8 CHW tensors) of a list of image paths."""

    def __init__(self, paths: Sequence[str], size: int, resize: int | None) -> None:
        self.paths = list(paths)
        self.size = size
        self.resize = resize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        crop = load_center_crop(self.paths[i], self.size, self.resize)
        return i, torch.from_numpy(crop).permute(2, 0, 1).contiguous()


def _crop_cache_key(paths: Sequence[str], size: int, resize: int | None) -> str:
    """Key of a crop cache: file identities (path, size, mtime) and crop settings."""
    h = hashlib.sha256(f"v{CROP_CACHE_VERSION}:{size}:{resize}".encode())
    for p in paths:
        try:
            st = Path(p).stat()
            ident = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            ident = f"{p}|missing"
        h.update(ident.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


class CropCache:
    """A memory-mapped uint8 ``[N, S, S, 3]`` file of centre crops, built once, atomically.

    The file appears under its final name only when every crop has been written, so a
    killed build is never trusted; later epochs read crops without decoding images.
    """

    def __init__(
        self, cache_dir: str | Path, paths: Sequence[str], size: int, resize: int | None
    ) -> None:
        self.paths = list(paths)
        self.size = size
        self.resize = resize
        key = _crop_cache_key(self.paths, size, resize)
        self.key = key
        self.file = Path(cache_dir) / f"crops_{key}_{len(self.paths)}x{size}.u8"
        self.lock_path = Path(cache_dir) / f".crops_{key}.lock"

    def claim(self) -> BuildLock | None:
        """The lock to write this cache, or None when another process is writing it, the
        folder is not writable or the disk is too full (then crops are decoded directly).

        Stale temporaries of killed builds are removed first (and their space counted).
        """
        lock = BuildLock(self.lock_path)
        try:
            if not lock.try_acquire():
                return None
        except ConfigError as exc:
            log.warning("DRCDown crop cache disabled: %s", exc)
            return None
        folder = self.file.parent
        remove_stale_temporaries(
            folder,
            ".crops_*.tmp",
            lambda t: [] if t.name[7:31] == self.key else [folder / f".crops_{t.name[7:31]}.lock"],
        )
        need = len(self.paths) * self.size * self.size * 3
        if shutil.disk_usage(folder).free < need:
            log.warning(
                "DRCDown crop cache disabled: %.2f GiB needed in %s but less is free",
                need / 2**30,
                folder,
            )
            lock.release()
            return None
        return lock

    @property
    def ready(self) -> bool:
        """True when the complete cache file exists."""
        expected = len(self.paths) * self.size * self.size * 3
        return self.file.is_file() and self.file.stat().st_size == expected

    def open(self) -> np.ndarray:
        """The cache as a read-only memmap ``[N, S, S, 3]``."""
        return np.memmap(
            self.file, dtype=np.uint8, mode="r", shape=(len(self.paths), self.size, self.size, 3)
        )


class _MemmapCropDataset(torch.utils.data.Dataset):
    """Crops read from a :class:`CropCache` memmap (opened lazily in each worker)."""

    def __init__(self, cache: CropCache, indices: np.ndarray) -> None:
        self.cache = cache
        self.indices = indices
        self._arr: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        if self._arr is None:
            self._arr = self.cache.open()
        j = int(self.indices[i])
        return j, torch.from_numpy(np.array(self._arr[j])).permute(2, 0, 1).contiguous()


# --------------------------------------------------------------------------- feature pass


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode and restore every submodule's own mode afterwards."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, was_training in modes.items():
            m.training = was_training


def _features_fn(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model.features`` (BIQAModule), else forward's features (a backbone's ``[B, d]``
    output, or the second element of ``(score, features)``)."""
    fn = getattr(model, "features", None)
    if callable(fn):
        return fn

    def from_forward(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        if isinstance(out, tuple) and len(out) == 2:
            return out[1]
        if isinstance(out, torch.Tensor) and out.ndim == 2:
            return out
        raise InputError(
            "the model has no features(x) method and forward(x) does not return "
            "(score, features); DRCDown needs the pooled features"
        )

    return from_forward


def extract_features(
    model: torch.nn.Module,
    paths: Sequence[str],
    indices: np.ndarray | None = None,
    *,
    crop_size: int = 224,
    resize: int | None = None,
    batch_size: int = 128,
    num_workers: int = 0,
    device: torch.device | str | None = None,
    half: bool = False,
    channels_last: bool | None = None,
    autocast: bool | None = None,
    cache_dir: str | Path | None = None,
    progress: bool | Any = False,
) -> np.ndarray:
    """Features of ``paths[indices]`` from ``model`` (eval mode, no grad, one centre crop).

    Returns float32 ``[len(indices), d]`` (float16 when ``half``), rows in ``indices``
    order. Images are streamed in batches; with ``cache_dir`` the uint8 centre crops are
    kept in a memory-mapped cache (written once, atomically; only when ``indices`` covers
    every path) so later passes do not decode images. ``channels_last`` and ``autocast``
    default to on for CUDA devices and off otherwise.
    """
    if crop_size < 1 or batch_size < 1:
        raise ConfigError(f"crop_size and batch_size must be >= 1 (got {crop_size}, {batch_size})")
    n_all = len(paths)
    idx = np.arange(n_all, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_all):
        raise InputError(
            f"feature-pass indices must lie in [0, {n_all}); got {idx.min()}..{idx.max()}"
        )
    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    device = torch.device(device)
    cuda = device.type == "cuda"
    channels_last = cuda if channels_last is None else channels_last
    autocast = cuda if autocast is None else autocast

    cache = CropCache(cache_dir, paths, crop_size, resize) if cache_dir is not None else None
    full_pass = idx.size == n_all and np.array_equal(idx, np.arange(n_all))
    claim = cache.claim() if (cache is not None and full_pass and not cache.ready) else None
    if claim is not None and cache is not None and cache.ready:  # finished meanwhile
        claim.release()
        claim = None
    if cache is not None and cache.ready:
        dataset: torch.utils.data.Dataset = _MemmapCropDataset(cache, idx)
        writer = None
    else:
        dataset = _CropDataset([paths[i] for i in idx], crop_size, resize)
        # One writer per cache file across processes; the others decode directly.
        writer = cache if claim is not None else None
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=cuda,
    )
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255.0
    feats_fn = _features_fn(model)
    out: np.ndarray | None = None
    dtype = np.float16 if half else np.float32

    with contextlib.ExitStack() as stack:
        if claim is not None:
            stack.callback(claim.release)
        mm = None
        if writer is not None:
            tmp = stack.enter_context(atomic_path(writer.file))
            mm = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=(n_all, crop_size, crop_size, 3))
        stack.enter_context(eval_mode(model))
        stack.enter_context(torch.inference_mode())
        if autocast:
            stack.enter_context(torch.autocast(device_type=device.type))
        # progress: True = a bar on stderr; a Trainer = a row of its live rich bar.
        bar = stack.enter_context(
            show_progress(
                f"DRCDown features ({idx.size} images)",
                len(loader),
                enabled=progress is not False,
                trainer=None if isinstance(progress, bool) else progress,
                transient=True,
            )
        )
        row = 0
        for keys, crops in loader:
            if mm is not None:
                mm[keys.numpy()] = crops.permute(0, 2, 3, 1).numpy()
            x = crops.to(device, non_blocking=True).float()
            x = (x - mean) / std
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            f = feats_fn(x).float()
            if f.ndim != 2:
                raise InputError(f"model features must be [B, d]; got shape {tuple(f.shape)}")
            if out is None:
                out = np.empty((idx.size, f.shape[1]), dtype=dtype)
            f_np = f.cpu().numpy().astype(dtype, copy=False)
            out[row : row + len(f_np)] = f_np  # both datasets yield rows in idx order
            row += len(f_np)
            bar.advance(1)
        if mm is not None:
            mm.flush()
            del mm
    if out is None:
        out = np.empty((0, 0), dtype=dtype)
    return out


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
        """The ``drcdown/*`` values logged for this epoch."""
        out = {
            "drcdown/kept": float(len(self.kept)),
            "drcdown/total": float(self.n_total),
            "drcdown/kept_fraction": len(self.kept) / max(1, self.n_total),
            "drcdown/feature_seconds": self.feature_seconds,
            "drcdown/select_seconds": self.select_seconds,
            "drcdown/subset_hash": hash_metric(self.hash),
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


@dataclass
class DRCDownConfig:
    """DRCDown hyper-parameters (paper names) and feature-pass settings."""

    T_f: float = 0.1
    T_q: float = 1.0
    T_u: int = 20
    rule: str = "reference"
    backend: str = "auto"
    crop_size: int = 224
    resize: int | None = None
    batch_size: int = 128
    num_workers: int = 0
    half: bool = False
    cache_dir: str | None = None
    split_pairs: bool = True  # DDP: split the pair search over the ranks

    def __post_init__(self) -> None:
        if not 0.0 < float(self.T_f) <= 2.0:
            raise ConfigError(f"reshape.T_f must be in (0, 2] (cosine distance); got {self.T_f}")
        if float(self.T_q) <= 0.0:
            raise ConfigError(f"reshape.T_q must be > 0 (on the 0..10 scale); got {self.T_q}")
        if int(self.T_u) < 1:
            raise ConfigError(f"reshape.T_u must be an integer >= 1; got {self.T_u}")
        if self.rule not in ("reference", "paper"):
            raise ConfigError(f"reshape.rule must be 'reference' or 'paper'; got {self.rule!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"reshape.backend={self.backend!r} is unknown; allowed values: {', '.join(BACKENDS)}"
            )


def select_subset(
    features: np.ndarray,
    labels: np.ndarray,
    cfg: DRCDownConfig,
    seed: int,
    epoch: int,
    distributed: bool = False,
) -> tuple[np.ndarray, dict[str, float]]:
    """Run DRCDown (pairs -> clusters -> downsampling) and return (kept, cluster stats).

    ``distributed``: every rank of the initialised process group calls this with the same
    inputs and the pair search is split over the ranks (reshape.distributed).
    """
    if distributed:
        from syndr_lightning.reshape.distributed import distributed_drcdown as run
    else:
        from syndr_lightning.reshape import drcdown as run

    res = run(
        features,
        labels,
        t_f=float(cfg.T_f),
        t_q=float(cfg.T_q),
        t_u=int(cfg.T_u),
        rule=cfg.rule,
        seed=int(seed),
        epoch=int(epoch),
        backend=cfg.backend,
    )
    kept = np.sort(np.asarray(res.kept, dtype=np.int64))
    return kept, _flatten_stats(res)


def _flatten_stats(res: Any) -> dict[str, float]:
    """Cluster diagnostics of a DRCDownResult as flat ``name -> float`` (logged as
    ``drcdown/<name>``): cluster-size statistics before downsampling under their own
    names (``clusters`` = clusters of size >= 2), after it under ``after_<name>``."""
    stats: dict[str, float] = {"pairs": float(getattr(res, "n_pairs", 0))}
    before = dict(getattr(res, "stats_before", {}) or {})
    after = dict(getattr(res, "stats_after", {}) or {})
    for key, value in before.items():
        if key in ("n_samples", "n_kept", "kept_fraction"):
            continue
        name = "clusters" if key == "n_clusters" else key
        stats[name] = float(value)
    for key, value in after.items():
        if key in ("n_samples", "n_kept", "kept_fraction"):
            continue
        stats[f"after_{key}"] = float(value)
    return stats


class DRCDownSelector:
    """Computes the DRCDown subset of one epoch from the current model, once per epoch.

    ``paths`` and ``labels`` describe the pool DRCDown runs over (the original training
    samples, or original + upsampled). ``__call__(trainer, epoch)`` returns the
    :class:`EpochSubset`; results are memoised per epoch for the current fit.
    """

    def __init__(
        self, paths: Sequence[str], labels: np.ndarray, cfg: DRCDownConfig, seed: int = 0
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
        self.cfg = cfg
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
        rank: int = 0,
        world_size: int = 1,
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
        broadcast: Callable[[Any], Any] | None = None,
        progress: bool | Any = False,
    ) -> EpochSubset:
        """Feature pass (this rank's shard), gather, decide on rank 0, broadcast."""
        n = len(self.paths)
        t0 = time.perf_counter()
        shard = np.arange(rank, n, world_size, dtype=np.int64)
        feats = extract_features(
            model,
            [self.paths[i] for i in shard],
            crop_size=self.cfg.crop_size,
            resize=self.cfg.resize,
            batch_size=self.cfg.batch_size,
            num_workers=self.cfg.num_workers,
            half=self.cfg.half,
            cache_dir=self.cfg.cache_dir,
            progress=progress,
        )
        if world_size > 1:
            if gather is None:
                raise InputError("world_size > 1 needs a gather function")
            feats = _gather_shards(feats, n, world_size, gather)
        feature_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        decision: tuple[np.ndarray, dict[str, float]] | None = None
        split = world_size > 1 and self.cfg.split_pairs
        if rank == 0 or split:
            decision = select_subset(
                feats.astype(np.float32, copy=False),
                self.labels,
                self.cfg,
                self.seed,
                epoch,
                distributed=split,
            )
        if world_size > 1:
            if broadcast is None:
                raise InputError("world_size > 1 needs a broadcast function")
            # rank 0's decision is the one every rank trains on
            decision = broadcast(decision)
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

    def __call__(self, trainer: Trainer, epoch: int) -> EpochSubset:
        """The subset of ``epoch`` for ``trainer``'s model (computed on first request)."""
        epoch = int(epoch)
        if epoch in self.results:
            return self.results[epoch]
        strategy = trainer.strategy
        world = int(trainer.world_size)
        return self.compute(
            trainer.lightning_module,
            epoch,
            rank=int(trainer.global_rank),
            world_size=world,
            # NCCL gathers device tensors only: move there and back
            gather=(lambda t: strategy.all_gather(t.to(strategy.root_device)).cpu())
            if world > 1
            else None,
            broadcast=(lambda obj: strategy.broadcast(obj, src=0)) if world > 1 else None,
            progress=_progress_host(trainer),
        )


def _progress_host(trainer: Trainer) -> Trainer | bool:
    """Global rank 0 shows the feature pass: as a row of Lightning's live rich bar when
    there is one (never a second live display), else as its own bar; other ranks: none."""
    if not trainer.is_global_zero:
        return False
    bar = getattr(trainer, "progress_bar_callback", None)
    return trainer if bar is not None else False


def _gather_shards(
    feats: np.ndarray, n: int, world: int, gather: Callable[[torch.Tensor], torch.Tensor]
) -> np.ndarray:
    """All-gather per-rank shards (rank r holds rows r::world) into the full [n, d] array."""
    per = math.ceil(n / world)
    d = feats.shape[1] if feats.ndim == 2 and feats.shape[0] else 0
    # ranks must agree on d even when a shard is empty
    d_all = gather(torch.tensor([d], dtype=torch.int64)).reshape(-1)
    d = int(d_all.max())
    padded = torch.zeros((per, d), dtype=torch.float32)
    if feats.shape[0]:
        padded[: feats.shape[0]] = torch.from_numpy(feats.astype(np.float32, copy=False))
    allf = gather(padded).reshape(world, per, d).numpy()
    out = np.empty((n, d), dtype=feats.dtype if feats.size else np.float32)
    for r in range(world):
        rows = np.arange(r, n, world)
        out[rows] = allf[r, : len(rows)]
    return out


# --------------------------------------------------------------------------- callback


class DRCDownCallback(Callback):
    """Logs the DRCDown decision of every epoch and keeps the subset history.

    The subset itself is computed by the datamodule's :class:`DRCDownSelector` when the
    train loader is built (see the module docstring). This callback logs ``drcdown/*``
    (kept, clusters, cluster-size statistics, feature/selection seconds, subset hash) at
    the start of each epoch, writes ``drcdown_history[.rank<r>].json`` under
    ``history_dir`` (default: the trainer's ``default_root_dir``) and stores the history
    in checkpoints so a resumed run continues it.
    """

    def __init__(self, history_dir: str | None = None, save_indices: bool = True) -> None:
        self.history_dir = history_dir
        self.save_indices = save_indices
        self.history: list[dict[str, Any]] = []
        self._indices: dict[int, np.ndarray] = {}

    def _selector(self, trainer: Trainer) -> DRCDownSelector | None:
        dm = trainer.datamodule
        return getattr(dm, "drcdown_selector", None) if dm is not None else None

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Log the subset that the current epoch's loader was built from."""
        sel = self._selector(trainer)
        if sel is None:
            return
        epoch = int(trainer.current_epoch)
        result = sel.results.get(epoch)
        if result is None:  # loader not rebuilt this epoch (reload disabled): compute now
            result = sel(trainer, epoch)
        for key, value in result.metrics().items():
            pl_module.log(key, value, on_step=False, on_epoch=True, sync_dist=False)
        rec = result.record()
        rec["rank"] = int(trainer.global_rank)
        self.history = [h for h in self.history if h["epoch"] != epoch] + [rec]
        if self.save_indices:
            self._indices[epoch] = result.kept
        self._write(trainer)

    def _write(self, trainer: Trainer) -> None:
        root = Path(self.history_dir or trainer.default_root_dir)
        suffix = "" if trainer.global_rank == 0 else f".rank{trainer.global_rank}"
        with atomic_open(root / f"drcdown_history{suffix}.json") as fh:
            json.dump(self.history, fh, indent=1)
        if self.save_indices and self._indices:
            with (
                atomic_path(root / f"drcdown_subsets{suffix}.npz") as tmp,
                open(tmp, "wb") as fh,
            ):
                np.savez(fh, **{f"epoch_{e}": v for e, v in sorted(self._indices.items())})

    def state_dict(self) -> dict[str, Any]:
        """Checkpointed state: the history of past epochs."""
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history of the epochs before the checkpoint."""
        self.history = list(state_dict.get("history", []))
