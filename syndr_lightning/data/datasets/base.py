"""Loader base class, per-dataset metadata and the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from syndr_lightning.utils.errors import DatasetError


@dataclass(frozen=True)
class DatasetInfo:
    """Published facts about one dataset, kept in one place."""

    name: str
    kind: str  # "synthetic" | "authentic" | "algorithmic" | "unlabeled" | "generic"
    higher_is_better_raw: bool
    raw_range: tuple[float, float] | None
    published_images: int | None
    published_references: int | None
    label_file: str | None
    url: str = ""


REGISTRY: dict[str, type[BaseDataset]] = {}


def register(cls: type[BaseDataset]) -> type[BaseDataset]:
    """Class decorator adding a loader to :data:`REGISTRY` under ``cls.info.name``."""
    REGISTRY[cls.info.name] = cls
    return cls


class BaseDataset:
    """A dataset folder as published. Subclasses implement :meth:`load`."""

    info: ClassVar[DatasetInfo]

    def __init__(self, root: str | Path, **options: Any) -> None:
        self.root = Path(root).expanduser()
        self.options = options
        if not self.root.exists():
            raise DatasetError(
                f"{self.info.name}: root {str(self.root)!r} does not exist; download the "
                f"dataset and pass its folder as root (data.train.root=... or "
                f"paths.data_dir=...)"
            )

    def load(self) -> pd.DataFrame:
        """Return the manifest of this dataset."""
        raise NotImplementedError

    def require(self, relative: str) -> Path:
        """Return ``root/relative`` or raise a DatasetError naming the missing file."""
        path = self.root / relative
        if not path.exists():
            raise DatasetError(
                f"{self.info.name}: expected {relative!r} under {str(self.root)!r} but it is "
                f"missing; is root the dataset's top folder as published?"
            )
        return path
