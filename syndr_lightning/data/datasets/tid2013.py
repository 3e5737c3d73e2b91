"""TID2013 (MOS 0..9, higher is better) and PIPAL's training part (Elo, higher is better)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from syndr_lightning.data.datasets.base import BaseDataset, DatasetInfo, FileIndex, register
from syndr_lightning.data.manifest import make_manifest
from syndr_lightning.utils.errors import DatasetError

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


@register
class PIPALDataset(BaseDataset):
    """PIPAL training part: ``Train_Label/A####.txt`` (``name,score`` per line), images
    ``Distortion/Aaaaa_bb_cc.bmp``; ``dist_class`` = bb (00..06), ``dist_type`` = cc.
    """

    info = DatasetInfo(
        name="pipal",
        kind="algorithmic",
        higher_is_better_raw=True,
        raw_range=(1000.0, 1900.0),
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
        folder = self.root / "Distortion"
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
                paths.append(str(folder / parts[0]))
                refs.append(match.group(1).upper())
                classes.append(int(match.group(2)))
                types.append(int(match.group(3)))
                raw.append(score)
        return make_manifest(
            paths, raw, dataset="pipal", refs=refs, dist_types=types, dist_class=classes
        )

    def references(self) -> dict[str, Path]:
        """Reference name -> ``Train_Ref/<name>.bmp``."""
        folder = self.root / "Train_Ref"
        if not folder.is_dir():
            return {}
        return {p.stem.upper(): p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".bmp"}
