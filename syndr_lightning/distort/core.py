"""GenDist entry points: seeds, one image, one batch.

Pipeline of every type (KADID's generator): global min-max stretch of the whole RGB array
to [0,1] ("mapmm"), the distortion, mapmm again, then ``round(255 x)`` for 8-bit output.
torch is imported on first use: :func:`distort_image` of the codec, filter and value-map
types (:mod:`ops_cpu`, :mod:`ops_numpy`) runs without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from syndr_lightning.distort import ops_cpu, ops_numpy
from syndr_lightning.distort.spec import check_level, check_type, derive_seed, spec
from syndr_lightning.utils.errors import InputError

if TYPE_CHECKING:
    import torch

Denoiser = Callable[[np.ndarray], np.ndarray]
__all__ = ["derive_seed", "distort_batch", "distort_image", "to_uint8_image"]


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seeds must be non-negative integers, got {seed!r}; use derive_seed()")
    return np.random.Generator(np.random.PCG64(int(seed)))


def _resolve_denoiser(denoiser: Denoiser | str | Path | None) -> Denoiser | None:
    if denoiser is None or callable(denoiser):
        return denoiser
    from syndr_lightning.distort.dncnn import load_dncnn_denoiser

    return load_dncnn_denoiser(denoiser)


def distort_batch(
    images: torch.Tensor,
    dist_type: int,
    level: int,
    seeds: Sequence[int],
    *,
    denoiser: Denoiser | str | Path | None = None,
    _check_finite: bool = True,
) -> torch.Tensor:
    """Distort a batch ``[B,3,H,W]`` (float in [0,1]) with one type and level.

    Applies mapmm before and after, returns float in [0,1] on the input's device (not yet
    rounded to 8 bit). Torch types run batched on the input's device (a GPU when the batch
    is there); codec and sequential types run image by image on the CPU. ``seeds[b]``
    drives image ``b``'s random numbers, so results do not depend on batch composition.
    ``denoiser``: type 15 only -- a callable or a DnCNN checkpoint path (default:
    non-local means). ``_check_finite=False`` skips the NaN scan (uint8-derived input).
    """
    import torch

    from syndr_lightning.distort import ops_torch

    t, lv = check_type(dist_type), check_level(level)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        found = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputError(f"images must be a float tensor [B,3,H,W], got {found}")
    if not images.is_floating_point():
        raise InputError(
            f"images must be float in [0,1], got dtype {images.dtype}; divide uint8 by 255"
        )
    if images.shape[2] < 2 or images.shape[3] < 2:
        raise InputError(f"images must be at least 2x2 pixels, got {tuple(images.shape[2:])}")
    if len(seeds) != images.shape[0]:
        raise InputError(f"need one seed per image: {images.shape[0]} images, {len(seeds)} seeds")
    if _check_finite and not torch.isfinite(images).all():
        raise InputError("images contain NaN or infinite values")
    rngs = [_rng(s) for s in seeds]
    s = spec(t)
    value = s.value(lv)
    dtype = images.dtype if images.dtype == torch.float64 else torch.float32
    x = ops_torch.mapmm(images.to(dtype))
    if s.backend == "torch":
        y = ops_torch.TORCH_OPS[t](x, value, rngs)
    else:
        fn = ops_cpu.CPU_OPS[t]
        extra = {"denoiser": _resolve_denoiser(denoiser)} if t == 15 else {}
        outs = []
        for b in range(x.shape[0]):
            arr = x[b].detach().permute(1, 2, 0).contiguous().cpu().numpy()
            outs.append(torch.from_numpy(np.ascontiguousarray(fn(arr, value, rngs[b], **extra))))
        y = torch.stack(outs).permute(0, 3, 1, 2).to(device=x.device, dtype=dtype)
    return ops_torch.mapmm(y)


def to_uint8_image(batch: torch.Tensor) -> list[np.ndarray]:
    """``[B,3,H,W]`` in [0,1] -> list of ``H x W x 3`` uint8 arrays.

    ``floor(255 x + 0.5)``: MATLAB's conversion to uint8 rounds halves up.
    """
    import torch

    u8 = batch.clamp(0, 1).mul(255).add_(0.5).floor_().to(torch.uint8)
    u8 = u8.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return [np.ascontiguousarray(a) for a in u8]


def _stretch_table(arr: np.ndarray) -> np.ndarray:
    """mapmm of a uint8 image as a float32 table over the 256 values."""
    lo, hi = int(arr.min()), int(arr.max())
    v = np.arange(256, dtype=np.float64)
    if hi > lo:
        return ((v - lo) / (hi - lo)).astype(np.float32)
    return np.full(256, lo / 255.0, dtype=np.float32)


def _final_scale(lo: float, hi: float) -> tuple[float, float]:
    """``(scale, offset)`` so that ``floor(scale y + offset)`` is mapmm then 8-bit rounding."""
    if hi - lo > 1e-12:
        scale = 255.0 / (hi - lo)
        return scale, 0.5 - lo * scale
    return 0.0, min(max(lo, 0.0), 1.0) * 255.0 + 0.5  # constant: clipped, not stretched


def _finish_numpy(y: np.ndarray) -> np.ndarray:
    """Final mapmm and 8-bit rounding of an ``H x W x 3`` float result."""
    scale, offset = _final_scale(float(y.min()), float(y.max()))
    z = y * scale
    z += offset
    return np.clip(z, 0, 255.0, out=z).astype(np.uint8)


def _finish_torch(y: torch.Tensor) -> np.ndarray:
    """Final mapmm and 8-bit rounding of a ``[1,3,H,W]`` float result, as ``H x W x 3``."""
    import torch

    lo, hi = torch.aminmax(y)
    scale, offset = _final_scale(float(lo), float(hi))
    z = y[0].mul(scale).add_(offset).clamp_(0, 255.0)
    out = np.empty((y.shape[2], y.shape[3], 3), dtype=np.uint8)
    torch.from_numpy(out).copy_(z.permute(1, 2, 0))  # float -> uint8 truncates: the floor
    return out


def distort_image(
    img: np.ndarray,
    dist_type: int,
    level: int,
    seed: int,
    *,
    denoiser: Denoiser | str | Path | None = None,
) -> np.ndarray:
    """Distort one ``H x W x 3`` uint8 RGB image; returns uint8 of the same shape.

    The same pipeline as :func:`distort_batch` with fewer passes over the image: the first
    mapmm is a table lookup on the uint8 values, the last one is fused with the rounding,
    the value-map types (:data:`ops_numpy.VALUE_MAPS`) run as one 256-entry table (only
    the values present in the image count for the final min and max), and the types in
    :data:`ops_numpy.NUMPY_OPS` and :data:`ops_cpu.CPU_OPS` run without torch. Equal to
    :func:`distort_batch` plus :func:`to_uint8_image` to 1/255 (float32 rounding).
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(
            f"img must be an H x W x 3 uint8 RGB array, got dtype {arr.dtype} shape {arr.shape}; "
            "convert with PIL.Image.open(p).convert('RGB')"
        )
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(f"images must be at least 2x2 pixels, got {tuple(arr.shape[:2])}")
    t, lv = check_type(dist_type), check_level(level)
    rng = _rng(seed)
    s = spec(t)
    value = s.value(lv)
    table = _stretch_table(arr)
    if t in ops_numpy.VALUE_MAPS:
        f = ops_numpy.VALUE_MAPS[t](table.astype(np.float64), value)
        present = np.bincount(arr.reshape(-1), minlength=256) > 0
        scale, offset = _final_scale(float(f[present].min()), float(f[present].max()))
        return np.clip(f * scale + offset, 0, 255.0).astype(np.uint8)[arr]
    if t in ops_numpy.NUMPY_OPS:
        return _finish_numpy(ops_numpy.NUMPY_OPS[t](table[arr], value, rng))
    if s.backend == "cpu":
        extra = {"denoiser": _resolve_denoiser(denoiser)} if t == 15 else {}
        return _finish_numpy(np.asarray(ops_cpu.CPU_OPS[t](table[arr], value, rng, **extra)))
    import torch

    from syndr_lightning.distort import ops_torch

    x = torch.from_numpy(table[arr.transpose(2, 0, 1)]).unsqueeze(0)  # [1,3,H,W]
    return _finish_torch(ops_torch.TORCH_OPS[t](x, value, [rng]))
