"""Reference-image features for DDCUp: a frozen encoder, one centre crop, cached per image.

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


def extract_reference_features(
    paths: Sequence[str | os.PathLike[str]],
    encoder: str = "resnet50",
    weights: str | None = "imagenet",
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    crop_size: int = 224,
) -> np.ndarray:
    """Features float32 ``[n, d]`` of the images at ``paths`` with a frozen encoder.

    Each image is seen once through a centre crop of ``crop_size``. With ``cache_dir``,
    each image's feature is stored as ``<sha256>.npy`` (atomic write) keyed by path, file
    size, mtime, encoder, weights and crop, and reused when all of them match.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("paths: expected at least one image path, found none")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise InputError(f"{len(missing)} image(s) not found, e.g. {missing[0]}; check the paths")
    if batch_size < 1 or crop_size < 1:
        raise InputError(f"batch_size and crop_size must be >= 1, found {batch_size}, {crop_size}")
    cache = Path(cache_dir) if cache_dir is not None else None
    keys = [cache_key(p, encoder, weights, crop_size) for p in files]
    feats: list[np.ndarray | None] = [None] * len(files)

    def load_cached() -> bool | None:
        """Fill ``feats`` from the cache; True when nothing is left to compute."""
        if cache is None:
            return None
        for n, key in enumerate(keys):
            f = cache / f"{key}.npy"
            if feats[n] is None and f.is_file():
                try:
                    feats[n] = read_npy(f, "reference-feature cache")
                except InputError:
                    feats[n] = None  # unreadable cache entry: recompute and overwrite
        return True if all(f is not None for f in feats) else None

    def compute() -> bool:
        todo = [n for n, f in enumerate(feats) if f is None]
        dev = resolve_device(device)
        module, _ = build_encoder(encoder, weights)
        module = module.to(dev)
        with torch.inference_mode():
            for a in range(0, len(todo), batch_size):
                chunk = todo[a : a + batch_size]
                batch = torch.stack([load_centre_crop(files[n], crop_size) for n in chunk])
                out = module(batch.to(dev)).float().cpu().numpy()
                for n, row in zip(chunk, out, strict=True):
                    feats[n] = row.astype(np.float32)
                    if cache is not None:
                        with atomic_open(cache / f"{keys[n]}.npy", "wb") as fh:
                            np.save(fh, feats[n])
        return True

    if load_cached() is None:
        if cache is None:
            compute()
        else:
            # Processes needing the same features: one computes, the others wait and read.
            todo_key = hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()[:16]
            lock = cache / f".features-{todo_key}.lock"

            def build() -> bool:
                remove_stale_temporaries(
                    cache,
                    ".*.npy.*.tmp",
                    lambda t: [p for p in cache.glob(".features-*.lock") if p != lock],
                )
                return compute()

            build_once(lock, load_cached, build)
    return np.stack([np.asarray(f, dtype=np.float32) for f in feats])
