"""The KADID-10k distortion table: 25 types x 5 levels (official numbering 1..25).

Facts from the KADID-10k publication and its MATLAB generator (docs/gendist.md); each
entry names the operation, the parameter that the five levels set, where the type runs
(``torch`` = batched tensor code, ``cpu`` = per-image numpy/Pillow code on CPU workers)
and whether it draws random numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from syndr_lightning.utils.errors import InputError

# Bumped whenever GenDist's output for a given (image, type, level, seed) changes on
# purpose, so caches of generated images (DDCUp's upsampled set) are rebuilt.
# 2: fspecial('motion') kernel, ycbcr2rgb clip, Keys a=-0.5 jitter, JPEG 2000 settings.
GENDIST_VERSION = 2


@dataclass(frozen=True)
class DistortionSpec:
    """One KADID distortion type."""

    number: int
    name: str
    param: str
    levels: tuple[float, float, float, float, float]
    backend: str  # "torch" (batched) or "cpu" (per image, worker processes)
    random: bool

    def value(self, level: int) -> float:
        """The parameter of ``level`` (1..5)."""
        return self.levels[check_level(level) - 1]


SPECS: dict[int, DistortionSpec] = {
    s.number: s
    for s in (
        DistortionSpec(1, "Gaussian blur", "sigma", (0.1, 0.5, 1, 2, 5), "torch", False),
        DistortionSpec(2, "Lens blur", "radius", (1, 2, 4, 6, 8), "torch", False),
        DistortionSpec(3, "Motion blur", "length", (1, 2, 4, 6, 10), "torch", True),
        DistortionSpec(4, "Color diffusion", "amount", (1, 3, 6, 8, 12), "torch", False),
        DistortionSpec(5, "Color shift", "amount", (1, 3, 6, 8, 12), "torch", True),
        DistortionSpec(6, "Color quantization", "colors", (64, 48, 32, 16, 8), "cpu", False),
        DistortionSpec(7, "Color saturation 1", "factor", (0.4, 0.2, 0.1, 0, -0.4), "torch", False),
        DistortionSpec(8, "Color saturation 2", "factor", (1, 2, 3, 6, 9), "torch", False),
        DistortionSpec(9, "JPEG2000", "ratio", (16, 32, 45, 120, 400), "cpu", False),
        DistortionSpec(10, "JPEG", "quality", (43, 36, 24, 7, 4), "cpu", False),
        DistortionSpec(11, "White noise", "var", (0.001, 0.002, 0.003, 0.005, 0.01), "torch", True),
        DistortionSpec(
            12, "White noise in color", "var", (0.0001, 0.0005, 0.001, 0.002, 0.003), "torch", True
        ),
        DistortionSpec(
            13, "Impulse noise", "density", (0.001, 0.005, 0.01, 0.02, 0.03), "torch", True
        ),
        DistortionSpec(
            14, "Multiplicative noise", "var", (0.001, 0.005, 0.01, 0.02, 0.05), "torch", True
        ),
        DistortionSpec(15, "Denoise", "var", (0.01, 0.03, 0.05, 0.1, 0.15), "cpu", True),
        DistortionSpec(16, "Brighten", "amount", (0.1, 0.2, 0.4, 0.7, 1.1), "torch", False),
        DistortionSpec(17, "Darken", "amount", (0.05, 0.1, 0.2, 0.4, 0.8), "torch", False),
        DistortionSpec(18, "Mean shift", "shift", (0.15, 0.08, 0, -0.08, -0.15), "torch", False),
        DistortionSpec(19, "Jitter", "sigma_px", (0.05, 0.1, 0.2, 0.5, 1), "torch", True),
        DistortionSpec(20, "Non-eccentricity patch", "patches", (20, 40, 60, 80, 100), "cpu", True),
        DistortionSpec(21, "Pixelate", "strength", (0.01, 0.05, 0.1, 0.2, 0.5), "torch", False),
        DistortionSpec(22, "Quantization", "thresholds", (20, 16, 13, 10, 7), "cpu", False),
        DistortionSpec(23, "Color block", "blocks", (2, 4, 6, 8, 10), "torch", True),
        DistortionSpec(24, "High sharpen", "amount", (1, 2, 3, 6, 12), "torch", False),
        DistortionSpec(25, "Contrast change", "amount", (0.3, 0.15, 0, -0.4, -0.6), "torch", False),
    )
}

ALL_TYPES: tuple[int, ...] = tuple(SPECS)
ALL_LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        as_int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return as_int if as_int == value else None


def check_type(dist_type: int) -> int:
    """Return ``dist_type`` as int or raise :class:`InputError` when it is not 1..25."""
    t = _as_int(dist_type)
    if t is None or t not in SPECS:
        raise InputError(
            f"distortion type must be an integer 1..25 (KADID numbering), got {dist_type!r}; "
            "see docs/gendist.md for the table"
        )
    return t


def check_level(level: int) -> int:
    """Return ``level`` as int or raise :class:`InputError` when it is not 1..5."""
    lv = _as_int(level)
    if lv is None or not 1 <= lv <= 5:
        raise InputError(f"distortion level must be an integer 1..5, got {level!r}")
    return lv


def spec(dist_type: int) -> DistortionSpec:
    """The :class:`DistortionSpec` of ``dist_type``."""
    return SPECS[check_type(dist_type)]


def describe(dist_type: int, level: int) -> str:
    """Short label such as ``'sigma=0.5'`` for a type and level."""
    s = spec(dist_type)
    v = s.value(level)
    text = f"{v:g}" if isinstance(v, float) else str(v)
    return f"{s.param}={text}"


def derive_seed(global_seed: int, image_id: str, dist_type: int, level: int) -> int:
    """Seed of one output, stable across processes, platforms and Python versions.

    SHA-256 of ``"<global_seed>|<image_id>|<type>|<level>"``, first 8 bytes, as a
    non-negative 63-bit integer. Every level gets its own seed (levels are not nested).
    """
    key = f"{int(global_seed)}|{image_id}|{check_type(dist_type)}|{check_level(level)}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)
