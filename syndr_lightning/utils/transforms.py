"""Train and evaluation transforms: crops, flips and ImageNet normalisation.

Both take an ``uint8`` image ``[H,W,3]`` (numpy) and return float tensors:
:class:`TrainTransform` one random crop ``[3,S,S]`` (+ optional horizontal flip);
:class:`EvalTransform` ``n_crops`` crops ``[n,3,S,S]`` (random, or one centre crop).
Images smaller than the crop are first resized up (bilinear, aspect kept) so the short
side equals the crop size. :func:`centre_crop` is the same crop for ``uint8`` arrays
(feature passes, caches), with the same resampler (:func:`resize_short_side`). The
ImageNet mean and std of the whole package live here.

Randomness: training crops draw from torch's global generator, which the training
loader seeds per sample from (seed, epoch, sample) (``data/sampler.py``:
``SeededSubset``), so a seeded run repeats exactly, resumed or not. Evaluation crops are a pure function of ``(seed, image content)``
(:func:`crop_seed`): the same crops at every validation, and the same crops of the same
image in training's test, ``syndr eval``, ``syndr predict`` and ``load_model().score``,
whatever its position in a dataset, its path or the order of the files.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from syndr_lightning.utils.errors import ConfigError, InputError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EvalTransform",
    "TrainTransform",
    "centre_crop",
    "crop_seed",
    "eval_transform",
    "resize_short_side",
    "to_tensor",
    "train_transform",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def _rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"expected an RGB image of shape [H,W,3], got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def resize_short_side(x: torch.Tensor, short: int) -> torch.Tensor:
    """Float ``[3,H,W]`` in 0..1 resized (bilinear, aspect kept) so its short side is ``short``.

    The one resampler of the package's crops; unchanged when the short side already is
    ``short``. Downscaling is antialiased; values are clamped to 0..1.
    """
    h, w = x.shape[-2:]
    if min(h, w) == short:
        return x
    scale = short / min(h, w)
    size = (max(short, round(h * scale)), max(short, round(w * scale)))
    out = F.interpolate(
        x[None], size=size, mode="bilinear", align_corners=False, antialias=scale < 1
    )
    return out[0].clamp_(0.0, 1.0)


def to_tensor(image: np.ndarray, min_side: int = 0) -> torch.Tensor:
    """``uint8 [H,W,3]`` -> ImageNet-normalised ``float32 [3,H',W']``.

    When ``min(H, W) < min_side`` the image is resized up so its short side is ``min_side``.
    """
    x = torch.from_numpy(_rgb(image)).permute(2, 0, 1).float().div_(255.0)
    if min(x.shape[1:]) < min_side:
        _say_upsized(tuple(x.shape[1:]), min_side)
        x = resize_short_side(x, min_side)
    return (x - _MEAN) / _STD


_UPSIZED: list[bool] = []


def _say_upsized(shape: tuple[int, ...], side: int) -> None:
    """One warning per process the first time an image is smaller than the crop."""
    if _UPSIZED:
        return
    _UPSIZED.append(True)
    import logging

    h, w = shape
    logging.getLogger("syndr_lightning").warning(
        f"an image of {w}x{h} px is smaller than the {side} px crop: such images are resized "
        f"up (short side {side} px) before cropping; lower data.crop_size / --crop-size to "
        f"crop them as they are"
    )


def centre_crop(image: np.ndarray, size: int, resize: int | None = None) -> np.ndarray:
    """``uint8 [size,size,3]`` centre crop of a ``uint8 [H,W,3]`` image.

    ``resize`` first scales the short side to ``resize``; a short side still below
    ``size`` is scaled up to ``size`` (:func:`resize_short_side`, as the training and
    evaluation transforms do; the result is rounded back to uint8).
    """
    arr = _rgb(image)
    h, w = arr.shape[:2]
    short = max(resize if resize is not None else min(h, w), size)
    if short != min(h, w):
        x = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float().div_(255.0)
        x = resize_short_side(x, short).mul_(255.0).round_()
        arr = x.to(torch.uint8).permute(1, 2, 0).numpy()
        h, w = arr.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(arr[top : top + size, left : left + size])


def crop_seed(image: np.ndarray, seed: int = 0) -> int:
    """The seed of an image's random evaluation crops: ``seed`` and a digest of its pixels.

    The one test-time crop rule of the package: an image gets the same crops wherever it
    is scored (a dataset's test set, ``syndr eval``, ``syndr predict``, the Python API).
    """
    arr = np.ascontiguousarray(image)
    digest = hashlib.blake2b(arr.data, digest_size=8)
    digest.update(repr((arr.shape, str(arr.dtype), int(seed))).encode())
    return int.from_bytes(digest.digest(), "little") >> 1


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
    """``n_crops`` random crops (fixed per image: :func:`crop_seed`) or one centre crop
    -> ``[n,3,S,S]``."""

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
        """Return ``[n_crops, 3, crop, crop]`` of ``image`` (``index`` is unused: the crops
        follow the image's content, :func:`crop_seed`)."""
        key = None if self.mode == "center" else crop_seed(image, self.seed)
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
        gen = torch.Generator().manual_seed(int(key or 0))
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
