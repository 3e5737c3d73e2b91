"""GenDist: KADID-10k's 25 distortion types x 5 levels, seeded, batched where possible."""

from syndr_lightning.distort.core import derive_seed, distort_batch, distort_image
from syndr_lightning.distort.generator import generate
from syndr_lightning.distort.spec import ALL_LEVELS, ALL_TYPES, SPECS, DistortionSpec, describe

__all__ = [
    "ALL_LEVELS",
    "ALL_TYPES",
    "SPECS",
    "DistortionSpec",
    "derive_seed",
    "describe",
    "distort_batch",
    "distort_image",
    "generate",
]
