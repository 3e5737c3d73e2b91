"""Generic loaders: a CSV of ``path,score[,ref,type,level]`` and a plain image folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from syndr_lightning.data.datasets.base import (
    BaseDataset,
    DatasetInfo,
    read_csv,
    register,
    to_int_list,
    to_number,
)
from syndr_lightning.data.manifest import make_manifest
from syndr_lightning.utils.errors import DatasetError
from syndr_lightning.utils.images import IMAGE_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "CSVDataset", "FolderDataset"]


@register
class CSVDataset(BaseDataset):
    """``root`` is a CSV file with columns ``path,score[,ref,type,level,ref_path]``.

    Paths are relative to the CSV's folder (absolute paths are kept). Scores are taken as
    higher-is-better unless ``higher_is_better=False`` is passed. An image listed twice is
    refused naming its rows unless ``duplicates=mean`` (average its scores) is passed.
    Pristine reference images (what DDCUp needs): a ``ref_path`` column naming each row's
    reference image, or ``refs_dir`` (option), a folder holding ``<ref>.<ext>`` per ``ref``.
    """

    info = DatasetInfo(
        name="csv",
        kind="generic",
        higher_is_better_raw=True,
        raw_range=None,
        published_images=None,
        published_references=None,
        label_file=None,
    )
    root_is_file = True

    def __init__(
        self,
        root: str | Path,
        higher_is_better: bool = True,
        dataset_name: str = "csv",
        duplicates: str = "error",
        refs_dir: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        self.higher_is_better = higher_is_better
        self.dataset_name = str(dataset_name)
        self.duplicates = str(duplicates)
        self.refs_dir = None if refs_dir in (None, "") else Path(str(refs_dir)).expanduser()

    def references(self) -> dict[str, Path]:
        """Reference id -> pristine image, from the ``ref_path`` column or ``refs_dir``
        (``{}`` when the CSV has neither)."""
        table = read_csv("csv", self.root)
        if "ref" not in table or table["ref"].isna().all():
            return {}
        base = self.root.parent
        if "ref_path" in table:
            pairs = table[["ref", "ref_path"]].dropna().astype(str).drop_duplicates()
            clash = pairs[pairs["ref"].duplicated(keep=False)]
            if len(clash):
                raise DatasetError(
                    f"csv: {str(self.root)!r} names several ref_path for reference "
                    f"{clash['ref'].iloc[0]!r}; each ref needs one pristine image"
                )
            found = {
                r: (Path(p) if Path(p).is_absolute() else base / p)
                for r, p in zip(pairs["ref"], pairs["ref_path"], strict=True)
            }
            odd = [(r, p) for r, p in found.items() if p.suffix.lower() not in IMAGE_SUFFIXES]
            if odd:
                raise DatasetError(
                    f"csv: {str(self.root)!r}: ref_path {str(odd[0][1])!r} of reference "
                    f"{odd[0][0]!r} is not an image ({', '.join(IMAGE_SUFFIXES)}); each ref "
                    "needs its pristine image"
                )
            return found
        if self.refs_dir is None:
            return {}
        found: dict[str, Path] = {}
        for ref in sorted(set(table["ref"].dropna().astype(str))):
            hits = sorted(
                p for p in self.refs_dir.glob(f"{ref}.*") if p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not hits:
                raise DatasetError(
                    f"csv: no image {ref}.<png|jpg|...> for reference {ref!r} in refs_dir "
                    f"{str(self.refs_dir)!r}"
                )
            found[ref] = hits[0]
        return found

    def read(self) -> pd.DataFrame:
        if self.root.is_dir():
            raise DatasetError(
                f"csv: root must be the CSV file itself, got the folder {str(self.root)!r}"
            )
        table = read_csv("csv", self.root)
        missing = [c for c in ("path", "score") if c not in table.columns]
        if missing:
            raise DatasetError(
                f"csv: {str(self.root)!r} lacks columns {missing}; expected "
                f"path,score[,ref,type,level] (found {list(table.columns)})"
            )
        if table["path"].isna().any():
            raise DatasetError(
                f"csv: {str(self.root)!r} has {int(table['path'].isna().sum())} rows with an "
                f"empty 'path'; every row needs an image path"
            )
        base = self.root.parent
        paths = [str(p if Path(p).is_absolute() else (base / p)) for p in table["path"].astype(str)]
        refs = [None if pd.isna(r) else str(r) for r in table["ref"]] if "ref" in table else None
        types = to_int_list("csv", table["type"], self.root, "type") if "type" in table else None
        levels = (
            to_int_list("csv", table["level"], self.root, "level") if "level" in table else None
        )
        return make_manifest(
            paths,
            to_number("csv", table["score"], self.root, "score").to_numpy(),
            dataset=self.dataset_name,
            higher_is_better=self.higher_is_better,
            refs=refs,
            dist_types=types,
            levels=levels,
            duplicates=self.duplicates,
        )


@register
class FolderDataset(BaseDataset):
    """Every image under ``root`` (recursive), unlabeled; for prediction and candidates."""

    info = DatasetInfo(
        name="folder",
        kind="unlabeled",
        higher_is_better_raw=True,
        raw_range=None,
        published_images=None,
        published_references=None,
        label_file=None,
    )

    def read(self) -> pd.DataFrame:
        if not self.root.is_dir():
            raise DatasetError(f"folder: root {str(self.root)!r} must be a folder of images")
        paths = sorted(str(p) for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise DatasetError(
                f"folder: no images ({', '.join(IMAGE_SUFFIXES)}) found under {str(self.root)!r}"
            )
        refs: list[str | None] = [Path(p).stem for p in paths]
        return make_manifest(paths, None, dataset="folder", refs=refs)
