"""TID2013 (MOS 0..9, higher is better) and PIPAL's training part (Elo, higher is better)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from syndr_lightning.data.datasets.base import BaseDataset, DatasetInfo, FileIndex, register
from syndr_lightning.data.manifest import make_manifest
from syndr_lightning.utils.errors import ConfigError, DatasetError

_TID_NAME = re.compile(r"^i(\d{2})_(\d{2})_(\d)\.bmp$", re.IGNORECASE)
_PIPAL_NAME = re.compile(r"^(A\d{4})_(\d{2})_(\d{2})\.bmp$", re.IGNORECASE)


@register
class TID2013Dataset(BaseDataset):
    """TID2013: ``mos_with_names.txt`` (``<mos> <name>`` per line), images in
    ``distorted_images/`` and references in ``reference_images/``, matched in any case.
    """

    info = DatasetInfo(
        name="tid2013",
        kind="synthetic",
        higher_is_better_raw=True,
        raw_range=(0.0, 9.0),
        published_images=3_000,
        published_references=25,
        label_file="mos_with_names.txt",
        url="https://www.ponomarenko.info/tid2013.htm",
    )

    def read(self) -> pd.DataFrame:
        label = self.require("mos_with_names.txt")
        folder = self.root / "distorted_images"
        index = FileIndex(folder)
        paths, refs, types, levels, raw = [], [], [], [], []
        text = label.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            match = _TID_NAME.match(parts[-1]) if len(parts) == 2 else None
            try:
                mos = float(parts[0])
            except ValueError:
                match = None
            if match is None:
                raise DatasetError(
                    f"tid2013: line {number} of {str(label)!r} reads {line.strip()!r}; "
                    f"expected '<mos> <name>' such as '5.51429 i01_01_1.bmp'"
                )
            ref, typ, lev = (int(g) for g in match.groups())
            found = index.find(parts[1])
            paths.append(str(found if found is not None else folder / parts[1]))
            refs.append(f"I{ref:02d}")
            types.append(typ)
            levels.append(lev)
            raw.append(mos)
        return make_manifest(
            paths, raw, dataset="tid2013", refs=refs, dist_types=types, levels=levels
        )

    def references(self) -> dict[str, Path]:
        """Reference name (``I01``) -> file in ``reference_images/`` (any case)."""
        folder = self.root / "reference_images"
        if not folder.is_dir():
            return {}
        return {p.stem.upper(): p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".bmp"}


#: The paper's Table 2 groups in its row order -> PIPAL's distortion class (``bb`` of
#: ``Aaaaa_bb_cc.bmp``). Class 00 (traditional distortions) is in no group. ASSUMPTION:
#: the paper's order (Traditional SR, PSNR-originated SR, SR with kernel mismatch,
#: GAN-based SR, Denoising, SR and denoising joint) is PIPAL's class order 01..06, and the
#: configs' ``pipal1..pipal6`` type subsets (DGQA's order) follow it too.
PIPAL_GROUPS: dict[str, tuple[int, str]] = {
    "pipal1": (1, "Traditional SR"),
    "pipal2": (2, "PSNR-originated SR"),
    "pipal3": (3, "SR with kernel mismatch"),
    "pipal4": (4, "GAN-based SR"),
    "pipal5": (5, "Denoising"),
    "pipal6": (6, "SR and denoising joint"),
}


def resolve_pipal_group(group: Any) -> int | None:
    """``pipal1..pipal6`` or a class id 0..6 -> PIPAL's distortion class; None: all."""
    if group is None or str(group).lower() in ("all", "none", "null", ""):
        return None
    text = str(group).strip().lower()
    if text in PIPAL_GROUPS:
        return PIPAL_GROUPS[text][0]
    if text.isdigit() and 0 <= int(text) <= 6:
        return int(text)
    raise ConfigError(
        f"pipal: group={group!r} is unknown; allowed: {', '.join(PIPAL_GROUPS)} (the paper's "
        f"Table 2 groups), a distortion class 0..6, or all"
    )


@register
class PIPALDataset(BaseDataset):
    """PIPAL training part: ``Train_Label/A####.txt`` (``name,score`` per line), images
    ``Aaaaa_bb_cc.bmp`` in ``Distortion_1/`` .. ``Distortion_4/`` as published (or one
    merged ``Distortion/`` folder); ``dist_class`` = bb (00..06), ``dist_type`` = cc.

    ``group`` keeps one distortion class (``pipal1..pipal6``: the paper's Table 2 groups,
    see :data:`PIPAL_GROUPS`); scores are normalised over the whole file first.
    """

    def __init__(self, root: str | Path, group: Any = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.group = resolve_pipal_group(group)

    info = DatasetInfo(
        name="pipal",
        kind="algorithmic",
        higher_is_better_raw=True,
        raw_range=(916.7, 1836.0),
        published_images=23_200,
        published_references=200,
        label_file="Train_Label/",
        url="https://www.jasongt.com/projectpages/pipal.html",
    )

    def read(self) -> pd.DataFrame:
        labels = self.require("Train_Label")
        files = sorted(p for p in labels.iterdir() if p.suffix.lower() == ".txt")
        if not files:
            raise DatasetError(
                f"pipal: {str(labels)!r} holds no A####.txt label files; extract "
                f"Train_Label.zip there"
            )
        folders = self.image_folders()
        index = FileIndex(*folders)
        folder = folders[0] if folders else self.root / "Distortion"
        paths, refs, classes, types, raw = [], [], [], [], []
        for file in files:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                parts = [p.strip() for p in line.split(",")]
                match = _PIPAL_NAME.match(parts[0]) if len(parts) == 2 else None
                try:
                    score = float(parts[-1])
                except ValueError:
                    match = None
                if match is None:
                    raise DatasetError(
                        f"pipal: line {number} of {str(file)!r} reads {line.strip()!r}; "
                        f"expected 'A0001_00_00.bmp,1456.3'"
                    )
                found = index.find(parts[0])
                paths.append(str(found if found is not None else folder / parts[0]))
                refs.append(match.group(1).upper())
                classes.append(int(match.group(2)))
                types.append(int(match.group(3)))
                raw.append(score)
        table = make_manifest(
            paths, raw, dataset="pipal", refs=refs, dist_types=types, dist_class=classes
        )
        if self.group is None:
            return table
        part = table[table["dist_class"] == self.group].reset_index(drop=True)
        if part.empty:
            raise DatasetError(
                f"pipal: no image of distortion class {self.group:02d} under "
                f"{', '.join(str(f) for f in folders) or str(folder)!r}; check the download or "
                f"drop the group option"
            )
        return part

    def image_folders(self) -> list[Path]:
        """The image folders present: ``Distortion_1/``..``Distortion_N/`` as published
        (one per archive), and a merged ``Distortion/`` if there is one."""
        numbered = sorted(
            (p for p in self.root.glob("Distortion_*") if p.is_dir() and p.name[11:].isdigit()),
            key=lambda p: int(p.name[11:]),
        )
        merged = self.root / "Distortion"
        return [*numbered, *([merged] if merged.is_dir() else [])]

    def references(self) -> dict[str, Path]:
        """Reference name -> ``Train_Ref/<name>.bmp``."""
        folder = self.root / "Train_Ref"
        if not folder.is_dir():
            return {}
        return {p.stem.upper(): p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".bmp"}
