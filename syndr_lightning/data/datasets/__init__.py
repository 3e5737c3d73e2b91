"""Dataset loaders: each turns a dataset folder, exactly as published, into a manifest.

Use :func:`load_dataset`; per-dataset facts (published counts, raw range, direction,
layout) live on each loader's :class:`DatasetInfo`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from syndr_lightning.data.datasets import (  # noqa: F401  (registers every loader)
    authentic,
    csiq,
    generic,
    kadid,
    live,
    tid2013,
)
from syndr_lightning.data.datasets.base import REGISTRY, DatasetInfo, register
from syndr_lightning.data.datasets.check import check_dataset
from syndr_lightning.utils.errors import ConfigError

__all__ = [
    "REGISTRY",
    "DatasetInfo",
    "check_dataset",
    "dataset_names",
    "get_loader",
    "load_dataset",
    "register",
]


def dataset_names() -> list[str]:
    """Names usable in configs and the CLI."""
    return sorted(REGISTRY)


def get_loader(name: str) -> Any:
    """Return the loader class registered under ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}; allowed values: {', '.join(dataset_names())}"
        ) from None


def load_dataset(name: str, root: str | Path, **options: Any) -> pd.DataFrame:
    """Read dataset ``name`` at ``root`` into a manifest (see ``data.manifest``).

    Raises DatasetError when files are missing or malformed (every listed image must
    exist) and ConfigError for an unknown name or option.
    """
    loader = get_loader(name)
    try:
        instance = loader(root, **options)
    except TypeError as exc:
        raise ConfigError(f"{name}: bad option for this dataset ({exc})") from None
    return instance.load()
