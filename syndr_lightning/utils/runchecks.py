"""Run settings refused before anything is built (called by ``RunConfig.from_config``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syndr_lightning.utils.errors import ConfigError

__all__ = ["check_cache_dirs", "check_fit_length", "check_run"]


def check_fit_length(cfg: Any) -> None:
    """``trainer.max_epochs=0`` (or ``max_steps=0``) would test untrained weights: refuse."""
    trainer = cfg.get("trainer") or {}
    for key in ("max_epochs", "max_steps"):
        value = trainer.get(key)
        if value is not None and not isinstance(value, bool) and value == 0:
            raise ConfigError(
                f"trainer.{key}=0 would test untrained weights; set trainer.{key} to at least "
                "1 (or use `syndr eval` to score an existing checkpoint)"
            )


def check_cache_dirs(cfg: Any) -> None:
    """``paths.cache_dir`` / ``data.cache_dir`` must be folders (or not exist yet)."""
    for group in ("paths", "data"):
        node = cfg.get(group) or {}
        value = node.get("cache_dir") if hasattr(node, "get") else None
        if not value:
            continue
        where = Path(str(value)).expanduser()
        for p in (where, *where.parents):
            if p.exists():
                if not p.is_dir():
                    raise ConfigError(
                        f"{group}.cache_dir={str(value)!r}: {str(p)!r} is a file, not a folder; "
                        "point the cache at a folder"
                    )
                break


def check_run(cfg: Any) -> None:
    """Every check of this module."""
    check_fit_length(cfg)
    check_cache_dirs(cfg)
