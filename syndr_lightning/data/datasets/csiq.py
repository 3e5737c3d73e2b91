"""CSIQ (DMOS 0..1, lower is better): the official xlsx or a plain CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from syndr_lightning.data.datasets.base import (
    BaseDataset,
    DatasetInfo,
    FileIndex,
    read_csv,
    read_xlsx,
    register,
    to_int_list,
    to_number,
)
from syndr_lightning.data.manifest import make_manifest
from syndr_lightning.utils.errors import DatasetError

#: ``dst_type`` -> (``dst_idx``, folder under ``dst_imgs/``, file TAG, number of levels).
CSIQ_TYPES: dict[str, tuple[int, str, str, int]] = {
    "noise": (1, "awgn", "AWGN", 5),
    "jpeg": (2, "jpeg", "JPEG", 5),
    "jpeg 2000": (3, "jpeg2000", "jpeg2000", 5),
    "fnoise": (4, "fnoise", "fnoise", 5),
    "blur": (5, "blur", "BLUR", 5),
    "contrast": (6, "contrast", "contrast", 4),
}
CSIQ_COLUMNS = ["image", "dst_type", "dst_lev", "dmos"]
LABEL_FILES = ("csiq.DMOS.xlsx", "csiq.DMOS.csv")


def _image_name(value: Any) -> str:
    """Sheet cells hold numbers for numeric names (``1600``): give them back as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@register
class CSIQDataset(BaseDataset):
    """CSIQ: ``csiq.DMOS.xlsx`` (sheet ``all_by_image``, header row found by name) or a
    plain CSV with the same columns (``csiq.DMOS.csv``, or any file via ``label_file``).

    Distorted images ``<image>.<TAG>.<level>.png`` are found by name (any case) under
    every ``dst_imgs*/`` folder, so nested and flattened copies both work.
    """

    info = DatasetInfo(
        name="csiq",
        kind="synthetic",
        higher_is_better_raw=False,
        raw_range=(0.0, 1.0),
        published_images=866,
        published_references=30,
        label_file="csiq.DMOS.xlsx",
        url="https://s2.smu.edu/~eclarson/csiq.html",
    )

    def __init__(self, root: str | Path, label_file: str | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.label_file = label_file

    def _labels(self) -> tuple[pd.DataFrame, Path]:
        if self.label_file is not None:
            path = Path(self.label_file)
            path = path if path.is_absolute() else self.root / path
            if not path.is_file():
                raise DatasetError(f"csiq: label_file {str(path)!r} does not exist")
        else:
            found = [self.root / n for n in LABEL_FILES if (self.root / n).is_file()]
            if not found:
                raise DatasetError(
                    f"csiq: expected {' or '.join(LABEL_FILES)} under {str(self.root)!r} "
                    f"but neither exists; pass label_file=... for another CSV"
                )
            path = found[0]
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            return read_xlsx("csiq", path, CSIQ_COLUMNS, sheet="all_by_image"), path
        table = read_csv("csiq", path)
        table.columns = [str(c).strip() for c in table.columns]
        self.require_columns(table, CSIQ_COLUMNS, path)
        return table, path

    def read(self) -> pd.DataFrame:
        table, label = self._labels()
        table = table[table["image"].notna()].reset_index(drop=True)
        folders = sorted(p for p in self.root.glob("dst_imgs*") if p.is_dir())
        if not folders:
            raise DatasetError(
                f"csiq: no dst_imgs/ (or dst_imgs_all/) folder under {str(self.root)!r}; "
                f"extract the distorted images next to the label file"
            )
        index = FileIndex(*folders)
        levels = to_int_list("csiq", table["dst_lev"], label, "dst_lev")
        raw = to_number("csiq", table["dmos"], label, "dmos").to_numpy()
        paths, refs, types = [], [], []
        for row, (image, dst_type, lev) in enumerate(
            zip(table["image"], table["dst_type"], levels, strict=True)
        ):
            key = str(dst_type).strip().lower()
            if key not in CSIQ_TYPES:
                raise DatasetError(
                    f"csiq: row {row + 1} of {str(label)!r} has dst_type {dst_type!r}; "
                    f"expected one of {sorted(CSIQ_TYPES)}"
                )
            idx, folder, tag, _ = CSIQ_TYPES[key]
            name = _image_name(image)
            file_name = f"{name}.{tag}.{lev}.png"
            found = index.find(file_name)
            paths.append(str(found if found is not None else folders[0] / folder / file_name))
            refs.append(name.lower())
            types.append(idx)
        return make_manifest(
            paths,
            raw,
            dataset="csiq",
            higher_is_better=False,
            refs=refs,
            dist_types=types,
            levels=levels,
        )

    def references(self) -> dict[str, Path]:
        """Reference name (lower case) -> ``src_imgs/<name>.png``."""
        folder = self.root / "src_imgs"
        if not folder.is_dir():
            return {}
        return {p.stem.lower(): p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".png"}
