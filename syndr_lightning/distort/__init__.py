"""GenDist: KADID-10k's 25 distortion types x 5 levels, seeded, batched where possible.

Names are imported on first use (PEP 562), so ``syndr distort`` and its worker plan start
without torch; ``from syndr_lightning.distort import distort_image`` works as before.
"""

from __future__ import annotations

from syndr_lightning.utils.lazy import lazy_exports

_EXPORTS = {
    "distort_batch": "syndr_lightning.distort.core",
    "distort_image": "syndr_lightning.distort.core",
    "generate": "syndr_lightning.distort.generator",
    "ALL_LEVELS": "syndr_lightning.distort.spec",
    "ALL_TYPES": "syndr_lightning.distort.spec",
    "GENDIST_VERSION": "syndr_lightning.distort.spec",
    "derive_seed": "syndr_lightning.distort.spec",
    "SPECS": "syndr_lightning.distort.spec",
    "DistortionSpec": "syndr_lightning.distort.spec",
    "describe": "syndr_lightning.distort.spec",
}

__all__ = sorted(_EXPORTS)

lazy_exports(__name__, _EXPORTS)
