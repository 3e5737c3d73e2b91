"""syndr_lightning: SynDR-IQA (NeurIPS 2025) as a PyTorch Lightning + Hydra framework."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model"]


def load_model(path: str, **kwargs: Any) -> Any:
    """Load a trained checkpoint as a scorer with ``.score(image)`` (see ``inference.api``)."""
    from syndr_lightning.inference.api import load_model as _load

    return _load(path, **kwargs)
