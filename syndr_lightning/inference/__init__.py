"""Prediction (``load_model(path).score(image)``, ``syndr predict``) and export."""

from __future__ import annotations

from syndr_lightning.utils.lazy import lazy_exports

_EXPORTS = {
    "Scorer": "syndr_lightning.inference.api",
    "collect_images": "syndr_lightning.inference.api",
    "collect_inputs": "syndr_lightning.inference.api",
    "load_model": "syndr_lightning.inference.api",
    "to_rgb_array": "syndr_lightning.inference.api",
}

__all__ = sorted(_EXPORTS)

lazy_exports(__name__, _EXPORTS)
