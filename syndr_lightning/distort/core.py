"""GenDist entry points: seeds, one image, one batch.

Pipeline of every type (KADID's generator): global min-max stretch of the whole RGB array
to [0,1] ("mapmm"), the distortion, mapmm again, then ``round(255 x)`` for 8-bit output.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from syndr_lightning.distort import ops_cpu, ops_torch
from syndr_lightning.distort.spec import check_level, check_type, spec
from syndr_lightning.utils.errors import InputError

Denoiser = Callable[[np.ndarray], np.ndarray]


def derive_seed(global_seed: int, image_id: str, dist_type: int, level: int) -> int:
    """Seed of one output, stable across processes, platforms and Python versions.

    SHA-256 of ``"<global_seed>|<image_id>|<type>|<level>"``, first 8 bytes, as a
    non-negative 63-bit integer. Every level gets its own seed (levels are not nested).
    """
    key = f"{int(global_seed)}|{image_id}|{check_type(dist_type)}|{check_level(level)}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


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
    """``[B,3,H,W]`` in [0,1] -> list of ``H x W x 3`` uint8 arrays (``round(255 x)``)."""
    u8 = batch.clamp(0, 1).mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    u8 = u8.cpu().numpy()
    return [np.ascontiguousarray(a) for a in u8]


def distort_image(
    img: np.ndarray,
    dist_type: int,
    level: int,
    seed: int,
    *,
    denoiser: Denoiser | str | Path | None = None,
) -> np.ndarray:
    """Distort one ``H x W x 3`` uint8 RGB image; returns uint8 of the same shape."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(
            f"img must be an H x W x 3 uint8 RGB array, got dtype {arr.dtype} shape {arr.shape}; "
            "convert with PIL.Image.open(p).convert('RGB')"
        )
    x = torch.from_numpy(np.require(arr, requirements=["C", "W"])).permute(2, 0, 1).unsqueeze(0)
    x = x.contiguous().float().div_(255.0)
    out = distort_batch(x, dist_type, level, [seed], denoiser=denoiser, _check_finite=False)
    return to_uint8_image(out)[0]
