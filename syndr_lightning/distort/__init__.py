"""GenDist: KADID-10k's 25 distortion types x 5 levels, seeded, batched where possible."""

from __future__ import annotations

from syndr_lightning.utils.lazy import lazy_exports

_EXPORTS = {
    "derive_seed": "syndr_lightning.distort.core",
    "distort_batch": "syndr_lightning.distort.core",
    "distort_image": "syndr_lightning.distort.core",
    "generate": "syndr_lightning.distort.generator",
    "ALL_LEVELS": "syndr_lightning.distort.spec",
    "ALL_TYPES": "syndr_lightning.distort.spec",
    "SPECS": "syndr_lightning.distort.spec",
    "DistortionSpec": "syndr_lightning.distort.spec",
    "describe": "syndr_lightning.distort.spec",
}

__all__ = sorted(_EXPORTS)

lazy_exports(__name__, _EXPORTS)
