"""Run settings refused before anything is built (called by ``RunConfig.from_config``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from syndr_lightning.utils.errors import ConfigError

__all__ = [
    "RUN_NUMBERS",
    "check_cache_dirs",
    "check_fit_length",
    "check_numbers",
    "check_run_settings",
    "typed",
]

#: Run-level numbers: key -> (minimum, below-bound maximum or None, integer, other allowed
#: values). A key that is absent or null is not checked (the library's default applies).
RUN_NUMBERS: dict[str, tuple[float, float | None, bool, tuple[Any, ...]]] = {
    "seed": (0, None, True, ()),
    "max_image_pixels": (1, None, True, ()),  # width x height; null: Pillow's own limit
    "data.batch_size": (1, None, True, ()),
    "data.eval_batch_size": (1, None, True, ()),
    "data.num_workers": (0, None, True, ()),
    "data.crop_size": (1, None, True, ()),
    "data.eval_crops": (1, None, True, ()),
    "data.val_fraction": (0, 1, False, ()),
    "data.test_fraction": (0, 1, False, ()),
    "data.seed": (0, None, True, ()),
    "trainer.max_epochs": (1, None, True, (-1,)),
    "trainer.min_epochs": (0, None, True, ()),
    "trainer.max_steps": (1, None, True, (-1,)),
    "trainer.check_val_every_n_epoch": (1, None, True, ()),
    "trainer.accumulate_grad_batches": (1, None, True, ()),
    "trainer.log_every_n_steps": (1, None, True, ()),
    "trainer.reload_dataloaders_every_n_epochs": (0, None, True, ()),
    "trainer.num_sanity_val_steps": (0, None, True, (-1,)),
    "trainer.gradient_clip_val": (0, None, False, ()),
}


def _allowed(lo: float, hi: float | None, integer: bool, extra: tuple[Any, ...]) -> str:
    kind = "an integer" if integer else "a number"
    bound = f">= {lo}" if hi is None else f"in [{lo}, {hi})"
    return f"{kind} {bound}" + "".join(f" or {e}" for e in extra)


def check_numbers(values: Mapping[str, Any]) -> None:
    """Refuse a run-level number out of :data:`RUN_NUMBERS`' range in one line naming
    its key (``values``: dotted key -> value; None means "not set")."""
    for key, value in values.items():
        lo, hi, integer, extra = RUN_NUMBERS[key]
        if value is None or (value in extra and not isinstance(value, bool)):
            continue
        try:
            number = float(value)
            ok = not isinstance(value, bool) and math.isfinite(number) and number >= lo
            ok = ok and (hi is None or number < hi) and (not integer or number == int(number))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                f"{key}={value!r} is out of range; allowed: {_allowed(lo, hi, integer, extra)}"
            )


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


def check_run_settings(cfg: Any) -> None:
    """Every check of this module."""
    check_fit_length(cfg)
    check_numbers({key: OmegaConf.select(cfg, key) for key in RUN_NUMBERS})
    check_cache_dirs(cfg)


def typed(value: Any, cls: type, where: str) -> Any:
    """``value`` when it is a ``cls`` (None: ``cls()``, the defaults). A mapping is refused:
    it would be a second door for values ``RunConfig`` builds once and the record shows."""
    if value is None:
        return cls()
    if not isinstance(value, cls):
        raise ConfigError(
            f"{where} takes a {cls.__name__}, got {type(value).__name__}; build it with "
            f"{cls.__name__}.from_config(...) (train() passes the objects RunConfig built)"
        )
    return value
