"""Dataset loaders: each turns a dataset folder, exactly as published, into a manifest.

Use :func:`load_dataset`; per-dataset facts (published counts, raw range, direction,
layout) live on each loader's :class:`DatasetInfo`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from syndr_lightning.data.datasets.base import REGISTRY, DatasetInfo, register
from syndr_lightning.data.datasets.generic import CSVDataset, FolderDataset  # noqa: F401
from syndr_lightning.data.datasets.kadid import Kadid10kDataset, Kadis700kDataset  # noqa: F401
from syndr_lightning.utils.errors import ConfigError

__all__ = ["REGISTRY", "DatasetInfo", "dataset_names", "get_loader", "load_dataset", "register"]


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


def load_dataset(name: str, root: str, **options: Any) -> pd.DataFrame:
    """Read dataset ``name`` at ``root`` into a manifest (see ``data.manifest``)."""
    return get_loader(name)(root, **options).load()
