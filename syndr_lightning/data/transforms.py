"""Train and evaluation transforms: crops, flips and ImageNet normalisation.

Both take an ``uint8`` image ``[H,W,3]`` (numpy) and return float tensors:
:class:`TrainTransform` one random crop ``[3,S,S]`` (+ optional horizontal flip);
:class:`EvalTransform` ``n_crops`` crops ``[n,3,S,S]`` (random, or one centre crop).
Images smaller than the crop are first resized up (bilinear, aspect kept) so the short
side equals the crop size.

Randomness: training crops draw from torch's global generator, which Lightning's
``seed_everything(workers=True)`` seeds per worker and epoch, so a seeded run repeats
exactly. Evaluation crops are a pure function of ``(seed, sample index)``: the same
crops at every validation, making epochs comparable.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from syndr_lightning.models.backbones import IMAGENET_MEAN, IMAGENET_STD
from syndr_lightning.utils.errors import ConfigError, InputError

__all__ = ["EvalTransform", "TrainTransform", "eval_transform", "to_tensor", "train_transform"]

_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def to_tensor(image: np.ndarray, min_side: int = 0) -> torch.Tensor:
    """``uint8 [H,W,3]`` -> ImageNet-normalised ``float32 [3,H',W']``.

    When ``min(H, W) < min_side`` the image is resized up so its short side is ``min_side``.
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"expected an RGB image of shape [H,W,3], got shape {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)
    h, w = x.shape[1:]
    if min(h, w) < min_side:
        scale = min_side / min(h, w)
        size = (max(min_side, round(h * scale)), max(min_side, round(w * scale)))
        x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]
        x = x.clamp_(0.0, 1.0)
    return (x - _MEAN) / _STD


def resize_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a ``[3,H,W]`` tensor so that its shorter side is ``size`` (aspect kept;
    bilinear, antialiased when shrinking)."""
    h, w = x.shape[1:]
    scale = size / min(h, w)
    out = (max(1, round(h * scale)), max(1, round(w * scale)))
    if out == (h, w):
        return x
    y = F.interpolate(x[None], size=out, mode="bilinear", align_corners=False, antialias=scale < 1)
    return y[0]


def _check_crop(crop_size: int) -> int:
    if int(crop_size) < 8:
        raise ConfigError(f"data.crop_size must be an integer >= 8, got {crop_size!r}")
    return int(crop_size)


class TrainTransform:
    """One random ``crop_size`` crop, a horizontal flip with probability 0.5 when ``hflip``."""

    def __init__(self, crop_size: int = 224, hflip: bool = True) -> None:
        self.crop_size = _check_crop(crop_size)
        self.hflip = bool(hflip)

    def __call__(self, image: np.ndarray, index: int | None = None) -> torch.Tensor:
        """Return ``[3, crop, crop]``; ``index`` is unused (global RNG)."""
        x = to_tensor(image, self.crop_size)
        s = self.crop_size
        h, w = x.shape[1:]
        top = int(torch.randint(0, h - s + 1, (1,)))
        left = int(torch.randint(0, w - s + 1, (1,)))
        x = x[:, top : top + s, left : left + s]
        if self.hflip and bool(torch.rand(1) < 0.5):
            x = x.flip(-1)
        return x.contiguous()

    def __repr__(self) -> str:
        return f"TrainTransform(crop_size={self.crop_size}, hflip={self.hflip})"


class EvalTransform:
    """``n_crops`` random crops (fixed per sample index) or one centre crop -> ``[n,3,S,S]``."""

    def __init__(
        self,
        crop_size: int = 224,
        n_crops: int = 5,
        mode: str = "random",
        seed: int = 0,
        resize: int | None = None,
    ) -> None:
        self.crop_size = _check_crop(crop_size)
        if resize is not None and (isinstance(resize, bool) or int(resize) < self.crop_size):
            raise ConfigError(
                f"a test set's resize must be an integer >= the crop size {self.crop_size} (the "
                f"shorter side after resizing, e.g. 512 for BID_512), got {resize!r}"
            )
        self.resize = None if resize is None else int(resize)
        if mode not in ("random", "center"):
            raise ConfigError(f"data.eval_crop_mode must be 'random' or 'center', got {mode!r}")
        if int(n_crops) < 1:
            raise ConfigError(f"data.eval_crops must be >= 1, got {n_crops!r}")
        self.mode = mode
        self.n_crops = 1 if mode == "center" else int(n_crops)
        self.seed = int(seed)

    def __call__(self, image: np.ndarray, index: int | None = None) -> torch.Tensor:
        """Return ``[n_crops, 3, crop, crop]`` for the sample at ``index``."""
        if self.resize is not None:
            # resize in [0, 1] (before normalisation), then crop as usual
            raw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
            raw = resize_short_side(raw, self.resize).clamp_(0.0, 1.0)
            x = (raw - _MEAN) / _STD
        else:
            x = to_tensor(image, self.crop_size)
        s = self.crop_size
        h, w = x.shape[1:]
        if self.mode == "center":
            top, left = (h - s) // 2, (w - s) // 2
            return x[None, :, top : top + s, left : left + s].contiguous()
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(index or 0))
        tops = torch.randint(0, h - s + 1, (self.n_crops,), generator=gen).tolist()
        lefts = torch.randint(0, w - s + 1, (self.n_crops,), generator=gen).tolist()
        return torch.stack(
            [x[:, t : t + s, lf : lf + s] for t, lf in zip(tops, lefts, strict=True)]
        )

    def __repr__(self) -> str:
        return (
            f"EvalTransform(crop_size={self.crop_size}, n_crops={self.n_crops}, "
            f"mode={self.mode!r}, resize={self.resize})"
        )


def train_transform(crop_size: int = 224, hflip: bool = True) -> TrainTransform:
    """The paper's training transform (one random crop, optional flip, ImageNet norm)."""
    return TrainTransform(crop_size, hflip)


def eval_transform(
    crop_size: int = 224, n_crops: int = 5, mode: str = "random", seed: int = 0
) -> EvalTransform:
    """The paper's evaluation transform (``n_crops`` random crops, or ``center``)."""
    return EvalTransform(crop_size, n_crops, mode, seed)
