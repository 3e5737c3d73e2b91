"""GenDist: KADID-10k's 25 distortion types x 5 levels, seeded, batched where possible.

Names are imported on first use (PEP 562), so ``syndr distort`` and its worker plan start
without torch; ``from syndr_lightning.distort import distort_image`` works as before.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ALL_LEVELS": "spec",
    "ALL_TYPES": "spec",
    "GENDIST_VERSION": "spec",
    "SPECS": "spec",
    "DistortionSpec": "spec",
    "derive_seed": "spec",
    "describe": "spec",
    "distort_batch": "core",
    "distort_image": "core",
    "generate": "generator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
