"""Torch-free per-image versions of the types that need no torch: filters on ``H x W x 3``.

``distort_image`` (one uint8 image, the worker path of ``syndr distort``) uses these and
:mod:`ops_cpu`, so a run of these types never imports torch. :mod:`ops_torch` keeps the
batched versions (GPU); the two agree to float32 rounding (tests/test_distort_bands.py).
The kernels (MATLAB's ``fspecial``) and the contrast spline are defined here only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

CpuOp = Callable[..., np.ndarray]


# ----------------------------------------------------------------------------- kernels
def gaussian_kernel1d(sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian')`` profile with ``2*ceil(2 sigma)+1`` taps (float64)."""
    radius = math.ceil(2 * sigma)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """MATLAB ``fspecial('motion', length, angle_deg)`` (float64, rows top to bottom).

    As MATLAB documents it: a line segment of ``length`` px centred on the kernel at
    ``angle_deg`` counter-clockwise; every tap gets ``max(0, 1 - distance to the line)``;
    the kernel is normalised to sum 1. MATLAB measures the distance of a tap whose
    distance from the centre is below ``(length - 1) / 2`` perpendicular to the line and,
    for every other tap, to the nearer end point of the segment (this reproduces
    MATLAB's published ``fspecial('motion', 3, 45)``). The kernel is ``2 sy + 1`` rows by
    ``2 sx + 1`` columns with ``sx = fix(half |cos| + 1)``, ``sy = fix(half sin + 1)``
    (just under the integer when exact), as MATLAB sizes it; length <= 1 is the identity.
    """
    length = max(1.0, float(length))
    half = (length - 1) / 2
    phi = math.radians(float(angle_deg) % 180.0)
    cos_p, sin_p = math.cos(phi), math.sin(phi)
    tiny = length * 2.220446049250313e-16  # MATLAB's len*eps: exact integers round down
    sx = max(0, math.floor(half * abs(cos_p) + 1 - tiny))
    sy = max(0, math.floor(half * sin_p + 1 - tiny))
    x = np.arange(-sx, sx + 1, dtype=np.float64).reshape(1, -1)  # right
    y = np.arange(sy, -sy - 1, -1, dtype=np.float64).reshape(-1, 1)  # up
    along = x * cos_p + y * sin_p
    perp = y * cos_p - x * sin_p
    rad = np.sqrt(x**2 + y**2)
    to_end = np.sqrt(perp**2 + (np.abs(along) - half) ** 2)
    dist = np.where(rad >= half, to_end, np.abs(perp))
    k = np.maximum(1.0 - dist, 0.0)
    return k / k.sum()


def filter1d(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Correlate ``x`` (``H x W x C``) with a 1-D kernel along ``axis`` (replicate border)."""
    r = kernel.size // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = np.pad(x, pad, mode="edge")
    n = x.shape[axis]
    out = np.multiply(np.take(xp, range(0, n), axis=axis), x.dtype.type(kernel[0]))
    tmp = np.empty_like(out)
    for i in range(1, kernel.size):
        sl = [slice(None)] * x.ndim
        sl[axis] = slice(i, i + n)
        np.multiply(xp[tuple(sl)], x.dtype.type(kernel[i]), out=tmp)
        out += tmp
    return out


def gaussian_blur(
    x: np.ndarray, sigma: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Type 1: separable Gaussian filter per channel (``imgaussfilt``-like, replicate border)."""
    g = gaussian_kernel1d(sigma)
    return filter1d(filter1d(x, g, 1), g, 0)


def motion_blur(x: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    """Type 3: ``imfilter(x, fspecial('motion', length, angle), 'replicate')``, the angle
    uniform in [0, 180) (drawn first, as the batched version draws it)."""
    angle = float(rng.uniform(0.0, 180.0))
    if length <= 1:
        return x.copy()
    k = motion_kernel(length, angle)
    kh, kw = k.shape
    h, w = x.shape[:2]
    xp = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), mode="edge")
    out = np.zeros_like(x)
    tmp = np.empty_like(x)
    for i, j in zip(*np.nonzero(k > 1e-12), strict=True):
        np.multiply(xp[i : i + h, j : j + w], x.dtype.type(k[i, j]), out=tmp)
        out += tmp
    return out


# ----------------------------------------------------------------------------- value maps
_CONTRAST_KNOTS = (0.0, 0.3, 0.5, 0.7, 1.0)


def contrast_spline(amount: float) -> tuple[tuple[float, float, float, float], float]:
    """Not-a-knot cubic spline through (0,0), (.3,c1), (.5,.5), (.7,c2), (1,1) (MATLAB's
    ``spline``), ``c1 = .25 - a/4``, ``c2 = .75 + a/4``, as ``p(x) + k (x - .5)_+^3``.

    Not-a-knot makes the two pieces on each side of .5 one cubic each, and C2 continuity
    leaves them differing by a multiple of ``(x - .5)^3``: five unknowns, fixed by the
    five knots. Returns ``((p0, p1, p2, p3), k)`` with ``p(x) = p0 + p1 x + p2 x^2 + p3 x^3``.
    """
    c1, c2 = 0.25 - amount / 4, 0.75 + amount / 4
    xs = np.asarray(_CONTRAST_KNOTS)
    system = np.stack([xs**0, xs, xs**2, xs**3, np.clip(xs - 0.5, 0, None) ** 3], axis=1)
    sol = np.linalg.solve(system, np.array([0.0, c1, 0.5, c2, 1.0]))
    return (float(sol[0]), float(sol[1]), float(sol[2]), float(sol[3])), float(sol[4])


def contrast_curve(amount: float) -> Callable[[np.ndarray], np.ndarray]:
    """The contrast spline of :func:`contrast_spline` as a numpy function (unclipped)."""
    (p0, p1, p2, p3), k = contrast_spline(amount)

    def curve(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        return ((p3 * v + p2) * v + p1) * v + p0 + k * np.clip(v - 0.5, 0, None) ** 3

    return curve


def darken_map(v: np.ndarray, amount: float) -> np.ndarray:
    """Type 17 on values: ``clip(v - 2a v(1-v), 0, 1)``."""
    return np.clip(v - 2 * amount * v * (1 - v), 0, 1)


def mean_shift_map(v: np.ndarray, shift: float) -> np.ndarray:
    """Type 18 on values: ``clip(v + shift, 0, 1)``."""
    return np.clip(v + shift, 0, 1)


def contrast_map(v: np.ndarray, amount: float) -> np.ndarray:
    """Type 25 on values: the contrast spline (MATLAB ``spline``, not-a-knot), clipped."""
    return np.clip(contrast_curve(amount)(v), 0, 1)


# Types whose operation maps every sample value on its own (no neighbours, channels or
# random numbers): on a uint8 image they are a 256-entry table.
VALUE_MAPS: dict[int, Callable[[np.ndarray, float], np.ndarray]] = {
    17: darken_map,
    18: mean_shift_map,
    25: contrast_map,
}

NUMPY_OPS: dict[int, CpuOp] = {1: gaussian_blur, 3: motion_blur}
