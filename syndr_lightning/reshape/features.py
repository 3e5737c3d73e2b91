"""Feature extraction, both kinds: DDCUp's frozen-encoder reference features and
DRCDown's per-epoch feature pass of the model being trained.

* :func:`extract_reference_features`: every encoder is a backbone of the registry
  (``models.backbones.build_backbone``): ``resnet50``, ``vit_b_16``, ``swin_t``,
  ``efficientnet_lite0``, ``tiny_cnn`` and ``clip_vit_b_16`` (= ``clip_vit_b16``: the CLIP
  ViT-B/16 image tower as timm's ``vit_base_patch16_clip_224``, weights ``clip`` from the
  hub where there is internet, or a local timm / OpenAI / open_clip state dict). One
  centre crop per image, one cache file per pool.
* :func:`extract_features`: the current model's pooled features over the training pool
  (eval mode, no grad, one centre crop, large batches, channels_last and autocast on
  GPU, an optional uint8 crop cache so later epochs do not decode images).

Both crop with ``utils.transforms.centre_crop`` (the training transforms' resampler).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from syndr_lightning.reshape.params import ENCODERS
from syndr_lightning.utils.device import resolve_device
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.images import read_rgb
from syndr_lightning.utils.integrity import (
    block_crcs,
    crc_file,
    file_sha256,
    read_crcs,
    sha256_bytes,
    write_crcs,
)
from syndr_lightning.utils.io import atomic_open, atomic_path, file_identity, read_npy
from syndr_lightning.utils.locking import BuildLock, build_once, remove_stale_temporaries
from syndr_lightning.utils.progress import progress as progress_bar
from syndr_lightning.utils.transforms import IMAGENET_MEAN, IMAGENET_STD, centre_crop, to_tensor

# Bumped when the crops change pixels (v2: the training transforms' bilinear resampler).
CROP_CACHE_VERSION = 2
REFERENCE_CACHE_VERSION = 2
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- DDCUp reference features


def build_encoder(encoder: str, weights: str | None) -> tuple[torch.nn.Module, int]:
    """Frozen encoder ``(module, dim)`` taking ImageNet-normalised ``[B,3,H,W]``.

    Every encoder is a backbone of the registry (``models.backbones``), weights as there:
    a name (downloaded where there is internet) or a local file. ``clip_vit_b16`` /
    ``clip_vit_b_16``: the CLIP ViT-B/16 image tower (paper Table 10), weights ``clip``
    or a local state dict (timm's or OpenAI / open_clip's layout)."""
    if encoder not in ENCODERS:
        raise ConfigError(f"encoder={encoder!r} is unknown; allowed values: {', '.join(ENCODERS)}")
    from syndr_lightning.models.backbones import _looks_like_path, build_backbone

    name = "clip_vit_b_16" if encoder == "clip_vit_b16" else encoder
    w = "none" if weights is None else str(weights)
    if name == "clip_vit_b_16" and _looks_like_path(w) and not Path(w).expanduser().is_file():
        raise ConfigError(
            f"encoder={encoder} names a local weights file that does not exist: {w!r}; "
            "save the image tower once where there is internet, e.g. "
            "torch.save(timm.create_model('vit_base_patch16_clip_224.openai', "
            "pretrained=True, num_classes=0).state_dict(), 'clip_vit_b16.pth'), "
            "and pass that file (or weights=clip to download it)"
        )
    module, dim = build_backbone(name, w)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module, dim


def _weights_id(weights: str | None) -> str:
    w = "none" if weights is None else str(weights)
    p = Path(w).expanduser()
    return f"{p.resolve()}|{file_identity(p)}" if p.is_file() else w


def feature_key(path: Path, encoder: str, weights: str | None, crop_size: int) -> str:
    """Cache key of one image: its path and identity, encoder, weights, crop (and version)."""
    raw = (
        f"v{REFERENCE_CACHE_VERSION}|{path.resolve()}|{file_identity(path)}|{encoder}|"
        f"{_weights_id(weights)}|{crop_size}"
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def load_reference_tensor(path: Path, crop_size: int) -> torch.Tensor:
    """One ImageNet-normalised ``[3, crop, crop]`` centre crop (upscaled if smaller)."""
    return to_tensor(
        centre_crop(read_rgb(path, error=InputError, what="reference image"), crop_size)
    )


class _ReferenceCrops(torch.utils.data.Dataset):
    """Centre crops of image files, decoded in DataLoader workers."""

    def __init__(self, files: Sequence[Path], crop_size: int) -> None:
        self.files = list(files)
        self.crop_size = int(crop_size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return load_reference_tensor(self.files[i], self.crop_size)


def pool_cache_file(
    cache_dir: Path, files: Sequence[Path], encoder: str, weights: str | None, crop_size: int
) -> Path:
    """The one cache file of a pool: keyed by every image's key, in order."""
    digest = hashlib.sha256()
    for p in files:
        digest.update(feature_key(p, encoder, weights, crop_size).encode())
    return cache_dir / f"features-{encoder}-{len(files)}-{digest.hexdigest()[:24]}.npy"


def _digest_file(cached: Path) -> Path:
    """The SHA-256 written with a reference-features file."""
    return cached.with_name(cached.name + ".sha256")


def _auto_workers(n: int, batch_size: int) -> int:
    """Decoding workers: none for a few batches (start-up costs more), else up to 4."""
    if n < 4 * batch_size:
        return 0
    from syndr_lightning.utils.cpus import usable_cpus

    return max(0, min(4, usable_cpus() - 1))


def extract_reference_features(
    paths: Sequence[str | os.PathLike[str]],
    encoder: str = "resnet50",
    weights: str | None = "imagenet",
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    crop_size: int = 224,
    num_workers: int | None = None,
    progress: bool = True,
    description: str = "DDCUp encoder",
) -> np.ndarray:
    """Features float32 ``[n, d]`` of the images at ``paths`` with a frozen encoder.

    Each image is seen once through a centre crop of ``crop_size``, decoded by
    ``num_workers`` DataLoader workers (None: 0 for small pools, else up to 4) and
    encoded ``batch_size`` at a time, with a progress bar on stderr. With ``cache_dir``
    the pool's features are ONE ``.npy`` file (written atomically), keyed by every
    image's path, size and mtime, the encoder, weights and crop, and reused when all match.
    """
    from syndr_lightning.utils.progress import progress as show_progress

    files = [Path(p) for p in paths]
    if not files:
        raise InputError("paths: expected at least one image path, found none")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise InputError(f"{len(missing)} image(s) not found, e.g. {missing[0]}; check the paths")
    if batch_size < 1 or crop_size < 1:
        raise InputError(f"batch_size and crop_size must be >= 1, found {batch_size}, {crop_size}")
    cached = (
        pool_cache_file(Path(cache_dir), files, encoder, weights, crop_size)
        if cache_dir is not None
        else None
    )

    def load_cached() -> np.ndarray | None:
        """The pool's cached features, or None when absent or unreadable (recomputed)."""
        if cached is None or not cached.is_file():
            return None
        try:  # no digest: written by an older version, recomputed
            expected = _digest_file(cached).read_text().strip()
        except OSError:
            return None
        if expected != file_sha256(cached):
            log.warning("reference-feature cache %s does not match its digest: recomputed", cached)
            return None
        try:
            feats = read_npy(cached, "reference-feature cache")
        except InputError:
            return None
        if feats.ndim == 2 and len(feats) == len(files):
            return feats.astype(np.float32, copy=False)
        return None

    def compute() -> np.ndarray:
        dev = resolve_device(device)
        module, _ = build_encoder(encoder, weights)
        module = module.to(dev)
        workers = _auto_workers(len(files), batch_size) if num_workers is None else int(num_workers)
        loader = torch.utils.data.DataLoader(
            _ReferenceCrops(files, crop_size),
            batch_size=batch_size,
            shuffle=False,
            num_workers=workers,
            pin_memory=dev.type == "cuda",
        )
        rows: list[np.ndarray] = []
        with (
            torch.inference_mode(),
            show_progress(
                f"{description} ({len(files)} images)", len(files), enabled=progress
            ) as bar,
        ):
            for batch in loader:
                rows.append(module(batch.to(dev)).float().cpu().numpy())
                bar.advance(len(batch))
        feats = np.concatenate(rows).astype(np.float32, copy=False)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            np.save(buffer, feats)
            # The digest is published first: a features file is never read without one.
            with atomic_open(_digest_file(cached), "w") as fh:
                fh.write(sha256_bytes(buffer.getbuffer()) + "\n")
            with atomic_open(cached, "wb") as fh:
                fh.write(buffer.getbuffer())
        return feats

    if cached is None:
        return compute()
    # Processes needing the same pool's features: one computes, the others wait and read.
    lock = cached.parent / f".{cached.stem}.lock"

    def build() -> np.ndarray:
        # We hold the pool's lock: no live builder can own this pool's temporaries.
        remove_stale_temporaries(cached.parent, f".{cached.name}.*.tmp", lambda t: [])
        return compute()

    return build_once(lock, load_cached, build)


# --------------------------------------------------------------------------- DRCDown feature pass


def load_feature_pass_crop(path: str, size: int, resize: int | None = None) -> np.ndarray:
    """Decode ``path`` as RGB and return its uint8 ``[size, size, 3]`` centre crop
    (``utils.transforms.centre_crop``: ``resize`` scales the short side first; smaller
    images are scaled up to ``size``, as the training and evaluation transforms do)."""
    return centre_crop(read_rgb(path, what="DRCDown feature-pass image"), size, resize)


class _CropDataset(torch.utils.data.Dataset):
    """Centre crops (uint8 CHW tensors) of a list of image paths."""

    def __init__(self, paths: Sequence[str], size: int, resize: int | None) -> None:
        self.paths = list(paths)
        self.size = size
        self.resize = resize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        crop = load_feature_pass_crop(self.paths[i], self.size, self.resize)
        return i, torch.from_numpy(crop).permute(2, 0, 1).contiguous()


def _crop_cache_key(paths: Sequence[str], size: int, resize: int | None) -> str:
    """Key of a crop cache: every file's path and identity, and the crop settings."""
    h = hashlib.sha256(f"v{CROP_CACHE_VERSION}:{size}:{resize}".encode())
    for p in paths:
        h.update(f"{p}|{file_identity(p)}".encode())
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
        """True when the complete cache file and its checksums exist."""
        expected = len(self.paths) * self.size * self.size * 3
        return (
            self.file.is_file()
            and self.file.stat().st_size == expected
            and read_crcs(self.file, len(self.paths)) is not None
        )

    def verify(self, chunk: int = 256) -> bool:
        """True when every crop matches the checksum written with it; else the cache is
        deleted (with a warning naming it), so this pass decodes and rebuilds it."""
        crcs = read_crcs(self.file, len(self.paths)) if self.file.is_file() else None
        if crcs is None:
            return False
        arr = self.open()
        for start in range(0, len(self.paths), chunk):
            bad = np.flatnonzero(
                block_crcs(arr[start : start + chunk]) != crcs[start : start + chunk]
            )
            if bad.size:
                log.warning(
                    "DRCDown crop cache %s is corrupt (crop %d, %s, does not match its "
                    "checksum); it is deleted and rebuilt",
                    self.file,
                    start + int(bad[0]),
                    self.paths[start + int(bad[0])],
                )
                del arr
                for f in (self.file, crc_file(self.file)):
                    with contextlib.suppress(OSError):
                        f.unlink()
                return False
        return True

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
    usable = cache is not None and cache.ready and cache.verify()
    claim = cache.claim() if (cache is not None and full_pass and not usable) else None
    if claim is not None and cache is not None and cache.ready:  # finished meanwhile
        claim.release()
        claim = None
        usable = cache.verify()
    if cache is not None and usable:
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
            progress_bar(
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
        if mm is not None and writer is not None:
            mm.flush()
            # The checksums are published before the crops (the data file's rename); the
            # cache is optional: without its checksums it is never used (rebuilt later).
            try:
                write_crcs(writer.file, block_crcs(mm))
            except OSError as exc:
                log.warning(
                    "DRCDown crop cache not kept: its checksums cannot be written (%s)", exc
                )
            del mm
    if out is None:
        out = np.empty((0, 0), dtype=dtype)
    return out
