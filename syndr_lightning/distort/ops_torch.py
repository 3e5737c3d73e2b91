"""Batched torch implementations of the elementwise, convolution and resampling types.

Every function maps ``x`` (``[B,3,H,W]`` float, already min-max stretched to [0,1]) and the
level's parameter to the distorted batch, before the final min-max. Random numbers come
from one numpy ``Generator`` per image (``rngs[b]``), drawn on the CPU, so a batch gives the
same result as its images one by one, on any device. Filters use replicate padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from syndr_lightning.distort import color, ops_numpy

Op = Callable[[torch.Tensor, float, Sequence[np.random.Generator]], torch.Tensor]


# ----------------------------------------------------------------------------- kernels
def gaussian_kernel1d(sigma: float) -> torch.Tensor:
    """MATLAB ``fspecial('gaussian')`` profile; see :func:`ops_numpy.gaussian_kernel1d`."""
    return torch.from_numpy(ops_numpy.gaussian_kernel1d(sigma))


def disk_kernel(radius: float, supersample: int = 16) -> torch.Tensor:
    """Pillbox kernel of ``radius`` px; border pixels weighted by their covered area."""
    r = math.ceil(radius)
    n = 2 * r + 1
    sub = (torch.arange(supersample, dtype=torch.float64) + 0.5) / supersample - 0.5
    pix = torch.arange(-r, r + 1, dtype=torch.float64)
    coords = (pix[:, None] + sub[None, :]).reshape(-1)
    inside = (coords[:, None] ** 2 + coords[None, :] ** 2) <= radius**2
    cover = inside.reshape(n, supersample, n, supersample).to(torch.float64).mean(dim=(1, 3))
    return cover / cover.sum()


def motion_kernel(length: float, angle_deg: float) -> torch.Tensor:
    """MATLAB ``fspecial('motion', length, angle_deg)``; see :func:`ops_numpy.motion_kernel`."""
    return torch.from_numpy(ops_numpy.motion_kernel(length, angle_deg))


def conv_same(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise 2-D filtering of every channel with ``kernel`` (replicate padding)."""
    kh, kw = kernel.shape
    c = x.shape[1]
    xp = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    w = kernel.to(dtype=x.dtype, device=x.device).expand(c, 1, kh, kw)
    return F.conv2d(xp, w, groups=c)


def filter1d(x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """Correlate every channel with a 1-D ``kernel`` along ``dim`` (2 = rows, 3 = columns).

    A weighted sum of shifted views (replicate padding): on CPU this is several times
    faster than a depthwise ``conv2d`` for the short kernels used here, and runs on GPU too.
    """
    r = kernel.numel() // 2
    pad = (0, 0, r, r) if dim == 2 else (r, r, 0, 0)
    xp = F.pad(x, pad, mode="replicate")
    n = x.shape[dim]
    w = kernel.tolist()
    out = xp.narrow(dim, 0, n) * w[0]
    for i in range(1, len(w)):
        out.add_(xp.narrow(dim, i, n), alpha=w[i])
    return out


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter per channel (replicate padding)."""
    g = gaussian_kernel1d(sigma)
    return filter1d(filter1d(x, g, 3), g, 2)


def _per_sample_min_max(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dims = tuple(range(1, x.dim()))
    return x.amin(dim=dims, keepdim=True), x.amax(dim=dims, keepdim=True)


def mapmm(x: torch.Tensor) -> torch.Tensor:
    """Global min-max stretch of each sample to [0,1] (one min and max over all channels).

    A constant sample (max == min) cannot be stretched; it is returned clipped to [0,1].
    """
    lo, hi = _per_sample_min_max(x)
    span = hi - lo
    ok = span > 1e-12
    # per-sample scalars only, so the full-size work is a single fused multiply-add
    inv = torch.where(
        ok, 1.0 / torch.where(ok, span, torch.ones_like(span)), torch.zeros_like(span)
    )
    const = torch.where(ok, torch.zeros_like(lo), lo.clamp(0, 1))
    return torch.addcmul(const - lo * inv, x, inv).clamp_(0, 1)  # rounding can leave [0,1]


def _noise(
    rngs: Sequence[np.random.Generator], shape: tuple[int, ...], like: torch.Tensor, kind: str
):
    arrays = []
    for rng in rngs:
        if kind == "normal":
            arrays.append(rng.standard_normal(shape, dtype=np.float32))
        else:
            arrays.append(rng.random(shape, dtype=np.float32))
    return torch.from_numpy(np.stack(arrays)).to(device=like.device, dtype=like.dtype)


# ----------------------------------------------------------------------------- blur 1-3
def gaussian_blur_op(
    x: torch.Tensor, sigma: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 1: Gaussian filter of ``2*ceil(2 sigma)+1`` taps (MATLAB ``fspecial('gaussian')``,
    ``imgaussfilt``'s default size), replicate border."""
    return gaussian_blur(x, sigma)


def lens_blur_op(
    x: torch.Tensor, radius: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 2: ``imfilter(x, fspecial('disk', radius), 'replicate')`` (pillbox; border
    taps by covered area, see :func:`disk_kernel`)."""
    return conv_same(x, disk_kernel(radius))


def motion_blur_op(
    x: torch.Tensor, length: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 3: ``imfilter(x, fspecial('motion', length, angle), 'replicate')``.

    The angle is uniform in [0, 180) per image; see :func:`motion_kernel`.
    """
    angles = [float(rng.uniform(0.0, 180.0)) for rng in rngs]
    if length <= 1:
        return x.clone()
    kernels = [motion_kernel(length, a) for a in angles]
    kh = max(k.shape[0] for k in kernels)
    kw = max(k.shape[1] for k in kernels)
    padded = [
        F.pad(k, ((kw - k.shape[1]) // 2,) * 2 + ((kh - k.shape[0]) // 2,) * 2) for k in kernels
    ]
    return conv_per_sample_sparse(x, torch.stack(padded))  # [B,kh,kw], both odd


def conv_per_sample_sparse(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Filter sample ``b`` of ``x`` with ``kernels[b]`` (odd sizes, replicate padding).

    Sums shifted views over the taps that are non-zero in any sample: a line kernel
    touches ~2 px per unit length, far fewer than its rectangular support.
    """
    b, _, h, w = x.shape
    kh, kw = kernels.shape[-2:]
    xp = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    weights = kernels.to(dtype=x.dtype, device=x.device)
    taps = torch.nonzero(kernels.abs().amax(dim=0) > 1e-12).tolist()
    out = torch.zeros_like(x)
    for i, j in taps:
        out.addcmul_(xp[:, :, i : i + h, j : j + w], weights[:, i, j].view(b, 1, 1, 1))
    return out


# ----------------------------------------------------------------------------- colour 4-8
def color_diffusion_op(
    x: torch.Tensor, amount: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 4: ``rgb2lab``; a* and b* Gaussian-blurred (sigma = 1.5 a + 2) and scaled by a;
    L kept; MATLAB's ``lab2rgb`` (no Z clamp, see :func:`color.lab2rgb`), clipped."""
    lab = color.rgb2lab(x)
    ab = gaussian_blur(lab[:, 1:], 1.5 * amount + 2) * amount
    return color.lab2rgb(torch.cat((lab[:, :1], ab), dim=1))


def _sobel_magnitude(gray: torch.Tensor) -> torch.Tensor:
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)
    gx = conv_same(gray, kx)
    gy = conv_same(gray, kx.T.contiguous())
    return torch.sqrt(gx**2 + gy**2)


def color_shift_op(
    x: torch.Tensor, amount: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 5: green channel shifted by ``round(u * a)`` px (u: random non-negative unit vector).

    Blended by an edge mask ``e``: Sobel gradient magnitude of the gray image, Gaussian
    sigma 4, min-max, clipped to [0.1, 1], then stretched so its 1st..99th percentiles span
    [0, 1] (clipped); ``G' = e * shifted + (1 - e) * G``. The blend details and the
    replicate fill of the uncovered border are unverified (documented choices).
    """
    _, _, h, w = x.shape
    shifts = []
    for rng in rngs:
        u = rng.random(2)
        u = u / max(float(np.linalg.norm(u)), 1e-12)
        shifts.append((round(float(u[0]) * amount), round(float(u[1]) * amount)))
    green = x[:, 1:2]
    shifted = []
    for i, (dx, dy) in enumerate(shifts):
        dx, dy = min(dx, w - 1), min(dy, h - 1)
        g = F.pad(green[i : i + 1], (dx, 0, dy, 0), mode="replicate")[..., :h, :w]
        shifted.append(g)
    shifted_t = torch.cat(shifted, dim=0)
    e = gaussian_blur(_sobel_magnitude(color.rgb2gray(x)), 4.0)
    e = mapmm(e).clamp(0.1, 1.0)
    lo = _percentile(e, 0.01)
    hi = _percentile(e, 0.99)
    e = ((e - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1)
    out = x.clone()
    out[:, 1:2] = e * shifted_t + (1 - e) * green
    return out


def _percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Nearest-rank ``q`` quantile of each sample, ``[B,1,1,1]`` (no size limit, unlike
    ``torch.quantile``)."""
    flat = x.reshape(x.shape[0], -1)
    k = min(flat.shape[1], max(1, round(q * (flat.shape[1] - 1)) + 1))
    return flat.kthvalue(k, dim=1).values.view(-1, 1, 1, 1)


def saturation_hsv_op(
    x: torch.Tensor, factor: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 7: ``rgb2hsv``, saturation times ``factor``, ``hsv2rgb`` (no clip; the final
    min-max handles range)."""
    hsv = color.rgb2hsv(x)
    hsv = torch.cat((hsv[:, :1], hsv[:, 1:2] * factor, hsv[:, 2:]), dim=1)
    return color.hsv2rgb(hsv)


def saturation_lab_op(
    x: torch.Tensor, factor: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 8: ``rgb2lab``, a* and b* times ``factor``, MATLAB's ``lab2rgb`` (no Z clamp),
    clipped."""
    lab = color.rgb2lab(x)
    return color.lab2rgb(torch.cat((lab[:, :1], lab[:, 1:] * factor), dim=1))


# ----------------------------------------------------------------------------- noise 11-14
def white_noise_op(
    x: torch.Tensor, var: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 11: add N(0, var) to every sample, clip (as ``imnoise(x, 'gaussian', 0, var)``)."""
    n = _noise(rngs, tuple(x.shape[1:]), x, "normal")
    return (x + n * math.sqrt(var)).clamp(0, 1)


def color_noise_op(
    x: torch.Tensor, var: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 12: N(0, var) on Y, Cb, Cr (MATLAB ``rgb2ycbcr``, BT.601 studio range), clip in
    YCbCr, back with ``ycbcr2rgb``, which clips floating-point output to [0, 1] as MATLAB's does.
    """
    n = _noise(rngs, tuple(x.shape[1:]), x, "normal")
    ycc = (color.rgb2ycbcr(x) + n * math.sqrt(var)).clamp(0, 1)
    return color.ycbcr2rgb(ycc)


def impulse_noise_op(
    x: torch.Tensor, density: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 13: salt and pepper per element (as ``imnoise(x, 'salt & pepper', d)``):
    u < d/2 -> 0, d/2 <= u < d -> 1."""
    u = _noise(rngs, tuple(x.shape[1:]), x, "uniform")
    out = torch.where(u < density / 2, torch.zeros_like(x), x)
    return torch.where((u >= density / 2) & (u < density), torch.ones_like(x), out)


def multiplicative_noise_op(
    x: torch.Tensor, var: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 14: ``x + n x`` with n uniform, mean 0, variance ``var`` (as
    ``imnoise(x, 'speckle', var)``); clip."""
    u = _noise(rngs, tuple(x.shape[1:]), x, "uniform")
    n = (u - 0.5) * math.sqrt(12 * var)
    return (x + n * x).clamp(0, 1)


# ----------------------------------------------------------------------------- brightness 16-18
def _brighten_curve(v: torch.Tensor, amount: float) -> torch.Tensor:
    return (v + 2 * amount * v * (1 - v)).clamp(0, 1)


def brighten_op(
    x: torch.Tensor, amount: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 16: ``(2 f(RGB) + clip(lab2rgb(100 f(L/100), a*, b*))) / 3``, f(x) = x + 2a x(1-x)
    (MATLAB's ``rgb2lab`` / ``lab2rgb``)."""
    lab = color.rgb2lab(x)
    lum = 100 * _brighten_curve(lab[:, :1] / 100, amount)
    via_lab = color.lab2rgb(torch.cat((lum, lab[:, 1:]), dim=1))
    return (2 * _brighten_curve(x, amount) + via_lab) / 3


def darken_op(x: torch.Tensor, amount: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    """Type 17: ``f(x) = x - 2a x(1-x)`` on RGB, clipped at 0."""
    return (x - 2 * amount * x * (1 - x)).clamp(0, 1)


def mean_shift_op(
    x: torch.Tensor, shift: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 18: ``clip(x + shift)`` (the final min-max stretches it back); not monotone
    across levels, as in the original."""
    return (x + shift).clamp(0, 1)


# ----------------------------------------------------------------------------- spatial 19, 21, 23
def keys_weights(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic-convolution weights of the taps at -1, 0, 1, 2 for a fraction ``t``.

    ``W(s) = (a+2)|s|^3 - (a+3)|s|^2 + 1`` for ``|s| <= 1``,
    ``a|s|^3 - 5a|s|^2 + 8a|s| - 4a`` for ``1 < |s| < 2``, else 0. MATLAB's ``'cubic'``
    interpolation (``interp2``, ``imresize``) uses ``a = -0.5``. Returns ``[..., 4]``.
    """
    s = torch.stack((1 + t, t, 1 - t, 2 - t), dim=-1).abs()
    near = ((a + 2) * s - (a + 3)) * s * s + 1
    far = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a
    return torch.where(s <= 1, near, torch.where(s < 2, far, torch.zeros_like(s)))


def cubic_sample(x: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` ``[B,C,H,W]`` at pixel coordinates ``(px, py)`` ``[B,H',W']`` with Keys'
    cubic convolution, ``a = -0.5`` (MATLAB's ``'cubic'``), replicate border.

    Keys' 1-D kernel is affine in ``a``: ``W_a = W_0 + a D``, so the 2-D weight
    ``W_a(x) W_a(y)`` is quadratic in ``a`` and follows from four samples that torch
    computes fast: ``P(-.75,-.75)`` (bicubic ``grid_sample``), ``P(0,0)`` (``W_0`` weights
    the two nearest taps by ``1 - S(f)``, ``S(f)``, ``S(f) = 3f^2 - 2f^3``: a bilinear
    sample at ``floor(p) + S(frac(p))``), and ``P(0,-.75)``, ``P(-.75,0)`` (bicubic at the
    two nearest integer columns, or rows, blended by ``S``). Then
    ``P(-.5,-.5) = (4 P(-.75,-.75) + 2 P(0,-.75) + 2 P(-.75,0) + P(0,0)) / 9``, exactly.
    """
    h, w = x.shape[-2:]
    kw = {"padding_mode": "border", "align_corners": True}

    def sample(gx: torch.Tensor, gy: torch.Tensor, mode: str) -> torch.Tensor:
        grid = torch.stack((2 * gx / max(w - 1, 1) - 1, 2 * gy / max(h - 1, 1) - 1), dim=-1)
        return F.grid_sample(x, grid, mode=mode, **kw)

    x0, y0 = torch.floor(px), torch.floor(py)
    fx, fy = px - x0, py - y0
    sx = (fx * fx * (3 - 2 * fx)).unsqueeze(1)
    sy = (fy * fy * (3 - 2 * fy)).unsqueeze(1)
    out = sample(px, py, "bicubic").mul_(4.0)
    cols = torch.lerp(sample(x0, py, "bicubic"), sample(x0 + 1, py, "bicubic"), sx)
    rows = torch.lerp(sample(px, y0, "bicubic"), sample(px, y0 + 1, "bicubic"), sy)
    out.add_(cols, alpha=2.0).add_(rows, alpha=2.0)
    out.add_(sample(x0 + sx.squeeze(1), y0 + sy.squeeze(1), "bilinear"))
    return out.div_(9.0)


def jitter_op(
    x: torch.Tensor, sigma_px: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 19: 5 times, every pixel resampled at its own N(0, s^2) px offset.

    Cubic interpolation as MATLAB's ``'cubic'`` (Keys, ``a = -0.5``; see
    :func:`cubic_sample`), border replicate; intermediate passes are not clipped.
    """
    _b, _, h, w = x.shape
    ys = torch.arange(h, dtype=x.dtype, device=x.device)
    xs = torch.arange(w, dtype=x.dtype, device=x.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    out = x
    for _ in range(5):
        off = _noise(rngs, (h, w, 2), x, "normal") * sigma_px  # [B,H,W,2] (dx, dy)
        out = cubic_sample(out, gx + off[..., 0], gy + off[..., 1])
    return out


def pixelate_size(height: int, width: int, strength: float) -> tuple[int, int]:
    """Intermediate size of type 21: ``ceil(z H) x ceil(z W)`` with ``z = 0.95 - s^0.6``."""
    z = 0.95 - strength**0.6
    return max(1, math.ceil(z * height)), max(1, math.ceil(z * width))


def _nearest_index(n_out: int, n_in: int, device: torch.device) -> torch.Tensor:
    # Pixel-centre mapping (as MATLAB's imresize 'nearest'): src = floor((i + 0.5) n_in / n_out).
    i = torch.arange(n_out, device=device, dtype=torch.float64)
    return torch.floor((i + 0.5) * n_in / n_out).long().clamp(0, n_in - 1)


def pixelate_op(
    x: torch.Tensor, strength: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 21: ``imresize(x, size, 'nearest')`` down to :func:`pixelate_size`, then back."""
    _, _, h, w = x.shape
    sh, sw = pixelate_size(h, w, strength)
    # 'nearest-exact' is the pixel-centre rule src = floor((i + 0.5) n_in / n_out), the
    # same as MATLAB's imresize 'nearest' (see _nearest_index), with a fast kernel
    small = F.interpolate(x, size=(sh, sw), mode="nearest-exact")
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


def color_block_op(
    x: torch.Tensor, blocks: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 23: ``blocks`` opaque 32x32 squares of a uniform random colour at random places.

    Images smaller than 32 px use blocks of their smaller side.
    """
    _, _, h, w = x.shape
    size = min(32, h, w)
    out = x.clone()
    for i, rng in enumerate(rngs):
        for _ in range(int(blocks)):
            rgb = rng.random(3)
            top = int(rng.integers(0, h - size + 1))
            left = int(rng.integers(0, w - size + 1))
            fill = torch.tensor(rgb, dtype=x.dtype, device=x.device).view(3, 1, 1)
            out[i, :, top : top + size, left : left + size] = fill
    return out


# ----------------------------------------------------------------------------- 24, 25
def sharpen_op(x: torch.Tensor, amount: float, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
    """Type 24: ``rgb2lab``; unsharp mask on L, ``(1 + a) L - a G_3(L)``; MATLAB's
    ``lab2rgb``, clipped."""
    lab = color.rgb2lab(x)
    lum = lab[:, :1]
    sharp = (1 + amount) * lum - amount * gaussian_blur(lum, 3.0)
    return color.lab2rgb(torch.cat((sharp, lab[:, 1:]), dim=1))


def contrast_op(
    x: torch.Tensor, amount: float, rngs: Sequence[np.random.Generator]
) -> torch.Tensor:
    """Type 25: MATLAB ``spline`` (not-a-knot) contrast curve of
    :func:`ops_numpy.contrast_spline` on RGB, clipped; not monotone across levels."""
    (p0, p1, p2, p3), k = ops_numpy.contrast_spline(amount)
    y = ((p3 * x + p2) * x + p1) * x + p0
    return y.add_((x - 0.5).clamp_min(0) ** 3, alpha=k).clamp_(0, 1)


TORCH_OPS: dict[int, Op] = {
    1: gaussian_blur_op,
    2: lens_blur_op,
    3: motion_blur_op,
    4: color_diffusion_op,
    5: color_shift_op,
    7: saturation_hsv_op,
    8: saturation_lab_op,
    11: white_noise_op,
    12: color_noise_op,
    13: impulse_noise_op,
    14: multiplicative_noise_op,
    16: brighten_op,
    17: darken_op,
    18: mean_shift_op,
    19: jitter_op,
    21: pixelate_op,
    23: color_block_op,
    24: sharpen_op,
    25: contrast_op,
}
