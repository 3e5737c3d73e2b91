"""Colour conversions on batched tensors ``[B,3,H,W]`` (sRGB D65 Lab, HSV, BT.601 YCbCr).

They follow MATLAB's ``rgb2lab``/``lab2rgb`` (sRGB gamma, D65 white), ``rgb2hsv``/``hsv2rgb``
and ``rgb2ycbcr``/``ycbcr2rgb`` for double images (studio range), which KADID's generator used.
"""

from __future__ import annotations

import torch

_RGB2XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=torch.float64,
)
_XYZ2RGB = torch.linalg.inv(_RGB2XYZ)
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPS_LAB = (6.0 / 29.0) ** 3

# MATLAB rgb2ycbcr for double input: offset + M @ rgb, in [0,1] units.
_YCC_M = (
    torch.tensor(
        [
            [65.481, 128.553, 24.966],
            [-37.797, -74.203, 112.0],
            [112.0, -93.786, -18.214],
        ],
        dtype=torch.float64,
    )
    / 255.0
)
_YCC_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
_YCC_M_INV = torch.linalg.inv(_YCC_M)


def _matmul_channels(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix over the channel axis of ``[B,3,H,W]``."""
    return torch.einsum("ij,bjhw->bihw", m.to(dtype=x.dtype, device=x.device), x)


def rgb2lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0,1] -> CIE Lab (L 0..100), D65."""
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp_min(0) + 0.055) / 1.055) ** 2.4)
    xyz = _matmul_channels(lin, _RGB2XYZ)
    white = torch.tensor(_WHITE_D65, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    t = xyz / white
    f = torch.where(
        t > _EPS_LAB, t.clamp_min(_EPS_LAB) ** (1.0 / 3.0), t / (3 * (6 / 29) ** 2) + 4 / 29
    )
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=1)


def lab2rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE Lab (D65) -> sRGB as MATLAB's ``lab2rgb`` computes it, clipped to [0,1] by default.

    MATLAB clamps nothing on the way: ``f^-1`` is the CIE inverse (cube above 6/29, the
    linear segment below it, so X, Y or Z can be negative -- some other libraries clamp
    Z >= 0 here), linear RGB is not clipped, and the sRGB curve is applied to ``|v|`` with
    the sign of ``v`` (MATLAB's documented ``lab2rgb([80 -130 85])`` is
    ``[-0.6209 0.9537 -0.1927]``). ``clip=False`` returns that out-of-gamut result; KADID
    clips it, and the clip is the same whether it is applied before or after the curve.
    """
    fy = (lab[:, 0] + 16) / 116
    fx = fy + lab[:, 1] / 500
    fz = fy - lab[:, 2] / 200
    f = torch.stack((fx, fy, fz), dim=1)
    t = torch.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    white = torch.tensor(_WHITE_D65, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    lin = _matmul_channels(t * white, _XYZ2RGB)
    if clip:
        lin = lin.clamp(0, 1)
        return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    mag = lin.abs()
    enc = torch.where(mag <= 0.0031308, 12.92 * mag, 1.055 * mag ** (1 / 2.4) - 0.055)
    return torch.copysign(enc, lin)


def rgb2hsv(rgb: torch.Tensor) -> torch.Tensor:
    """RGB -> HSV, all in [0,1] (hue as a fraction of a turn)."""
    v, _ = rgb.max(dim=1)
    m, _ = rgb.min(dim=1)
    c = v - m
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    h = torch.where(
        v == r,
        ((g - b) / safe_c) % 6,
        torch.where(v == g, (b - r) / safe_c + 2, (r - g) / safe_c + 4),
    )
    h = torch.where(c > 0, h / 6, torch.zeros_like(h))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return torch.stack((h, s, v), dim=1)


def hsv2rgb(hsv: torch.Tensor) -> torch.Tensor:
    """HSV -> RGB by the closed form ``V - V S max(0, min(k, 4 - k, 1))``.

    The closed form is valid for any saturation, including the negative and >1 values
    that KADID's saturation type produces; nothing is clipped here.
    """
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (n + h * 6) % 6
        w = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
        out.append(v - v * s * w)
    return torch.stack(out, dim=1)


def rgb2ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0,1] -> BT.601 studio-range YCbCr in [0,1] units (MATLAB ``rgb2ycbcr``)."""
    off = _YCC_OFFSET.to(dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return _matmul_channels(rgb, _YCC_M) + off


def ycbcr2rgb(ycc: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Inverse of :func:`rgb2ycbcr`; MATLAB's ``ycbcr2rgb`` clips floating-point output to
    [0, 1], and so does this unless ``clip=False``."""
    off = _YCC_OFFSET.to(dtype=ycc.dtype, device=ycc.device).view(1, 3, 1, 1)
    rgb = _matmul_channels(ycc - off, _YCC_M_INV)
    return rgb.clamp(0, 1) if clip else rgb


def rgb2gray(rgb: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2gray`` weights; returns ``[B,1,H,W]``."""
    w = torch.tensor([0.2989, 0.5870, 0.1140], dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("c,bchw->bhw", w, rgb).unsqueeze(1)
