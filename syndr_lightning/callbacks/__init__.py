"""Lightning callbacks: DRCDown per epoch (``drcdown``), figures (``viz``)."""

from __future__ import annotations

from typing import Any

_LAZY = {
    "DRCDownCallback": "syndr_lightning.callbacks.drcdown",
    "DRCDownSelector": "syndr_lightning.reshape.engine",
}


def __getattr__(name: str) -> Any:
    """Import callbacks on first use (keeps ``import syndr_lightning`` light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
