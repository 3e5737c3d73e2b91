"""Reference-image features for DDCUp: a frozen encoder, one centre crop, one cache file per pool.

Encoders: ``resnet50`` / ``efficientnet_lite0`` / ``tiny_cnn`` from the backbone registry
(``models.backbones.build_backbone``), and ``clip_vit_b16``: the CLIP ViT-B/16 image tower
as timm's ``vit_base_patch16_clip_224``, whose weights the user supplies as a local file
(a timm or open_clip-converted state dict), since nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from syndr_lightning.utils.device import resolve_device
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.images import read_rgb
from syndr_lightning.utils.io import atomic_open, read_npy
from syndr_lightning.utils.locking import build_once, remove_stale_temporaries

ENCODERS: tuple[str, ...] = ("resnet50", "clip_vit_b16", "efficientnet_lite0", "tiny_cnn")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def build_encoder(encoder: str, weights: str | None) -> tuple[torch.nn.Module, int]:
    """Frozen encoder ``(module, dim)`` taking ImageNet-normalised ``[B,3,H,W]``."""
    if encoder not in ENCODERS:
        raise ConfigError(f"encoder={encoder!r} is unknown; allowed values: {', '.join(ENCODERS)}")
    if encoder == "clip_vit_b16":
        module, dim = _build_clip(weights)
    else:
        from syndr_lightning.models.backbones import build_backbone

        module, dim = build_backbone(encoder, weights)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module, dim


def _build_clip(weights: str | None) -> tuple[torch.nn.Module, int]:
    w = "none" if weights is None else str(weights)
    use_file = w.lower() not in ("none", "")
    if use_file and not Path(w).expanduser().is_file():
        raise ConfigError(
            f"encoder=clip_vit_b16 needs a local weights file, found weights={w!r}; "
            "save the image tower once where there is internet, e.g. "
            "torch.save(timm.create_model('vit_base_patch16_clip_224.openai', "
            "pretrained=True, num_classes=0).state_dict(), 'clip_vit_b16.pth'), "
            "and pass weights='clip_vit_b16.pth'"
        )
    import timm

    from syndr_lightning.models.backbones import Backbone, load_backbone_file

    net = timm.create_model("vit_base_patch16_clip_224", pretrained=False, num_classes=0)
    if use_file:
        load_backbone_file(net, w)
    dim = int(net.num_features)
    return Backbone(net, "clip_vit_b16", dim, CLIP_MEAN, CLIP_STD), dim


def _weights_id(weights: str | None) -> str:
    w = "none" if weights is None else str(weights)
    p = Path(w).expanduser()
    if p.is_file():
        st = p.stat()
        return f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    return w


def cache_key(path: Path, encoder: str, weights: str | None, crop_size: int) -> str:
    """Cache key of one image: path, size, mtime, encoder, weights and crop."""
    st = path.stat()
    raw = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{encoder}|{_weights_id(weights)}|{crop_size}"
    return hashlib.sha256(raw.encode()).hexdigest()


def load_centre_crop(path: Path, crop_size: int) -> torch.Tensor:
    """One ImageNet-normalised ``[3, crop, crop]`` centre crop (upscaled if smaller)."""
    img = Image.fromarray(read_rgb(path, error=InputError))
    w, h = img.size
    if min(w, h) < crop_size:
        scale = crop_size / min(w, h)
        img = img.resize((max(crop_size, round(w * scale)), max(crop_size, round(h * scale))))
        w, h = img.size
    left, top = (w - crop_size) // 2, (h - crop_size) // 2
    img = img.crop((left, top, left + crop_size, top + crop_size))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


class _CropDataset(torch.utils.data.Dataset):
    """Centre crops of image files, decoded in DataLoader workers."""

    def __init__(self, files: Sequence[Path], crop_size: int) -> None:
        self.files = list(files)
        self.crop_size = int(crop_size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return load_centre_crop(self.files[i], self.crop_size)


def pool_cache_file(
    cache_dir: Path, files: Sequence[Path], encoder: str, weights: str | None, crop_size: int
) -> Path:
    """The one cache file of a pool: keyed by every image's key, in order."""
    digest = hashlib.sha256()
    for p in files:
        digest.update(cache_key(p, encoder, weights, crop_size).encode())
    return cache_dir / f"features-{encoder}-{len(files)}-{digest.hexdigest()[:24]}.npy"


def _auto_workers(n: int, batch_size: int) -> int:
    """Decoding workers: none for a few batches (start-up costs more), else up to 4."""
    if n < 4 * batch_size:
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


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
            _CropDataset(files, crop_size),
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
            with atomic_open(cached, "wb") as fh:
                np.save(fh, feats)
        return feats

    if cached is None:
        return compute()
    # Processes needing the same pool's features: one computes, the others wait and read.
    lock = cached.parent / f".{cached.stem}.lock"

    def build() -> np.ndarray:
        remove_stale_temporaries(
            cached.parent,
            f".{cached.name}.*.tmp",
            lambda t: [lock],
        )
        return compute()

    return build_once(lock, load_cached, build)
