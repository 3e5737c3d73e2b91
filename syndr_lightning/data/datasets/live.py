"""LIVE Image Quality Assessment Database, release 2 (DMOS, lower is better)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from syndr_lightning.data.datasets.base import (
    BaseDataset,
    DatasetInfo,
    mat_strings,
    read_mat,
    register,
)
from syndr_lightning.data.manifest import make_manifest
from syndr_lightning.utils.errors import DatasetError

#: Distortion folders in the order of ``dmos_realigned.mat`` with their published sizes.
LIVE_FOLDERS: tuple[tuple[str, int], ...] = (
    ("jp2k", 227),
    ("jpeg", 233),
    ("wn", 174),
    ("gblur", 174),
    ("fastfading", 174),
)
_IMG = re.compile(r"^img(\d+)\.bmp$", re.IGNORECASE)


@register
class LiveDataset(BaseDataset):
    """LIVE release 2: ``dmos_realigned.mat`` (``dmos_new``, ``orgs``),
    ``refnames_all.mat`` (``refnames_all``), folders ``jp2k jpeg wn gblur fastfading``
    of ``img<k>.bmp``, references in ``refimgs/``. Entries with ``orgs == 1`` (copies of
    the references) are dropped; ``dist_type`` is the folder's position 1..5.
    """

    info = DatasetInfo(
        name="live",
        kind="synthetic",
        higher_is_better_raw=False,
        raw_range=(-2.64, 111.78),
        published_images=779,
        published_references=29,
        label_file="dmos_realigned.mat",
        url="https://live.ece.utexas.edu/research/quality/subjective.htm",
    )

    def _folder_sizes(self, total: int) -> list[int]:
        published = [n for _, n in LIVE_FOLDERS]
        if total == sum(published):
            return published
        # not the published release (e.g. a reduced copy): take sizes from the folders
        sizes = []
        for folder, _ in LIVE_FOLDERS:
            path = self.require(folder)
            ks = [int(m.group(1)) for p in path.iterdir() if (m := _IMG.match(p.name))]
            sizes.append(max(ks, default=0))
        if sum(sizes) != total:
            raise DatasetError(
                f"live: dmos_realigned.mat has {total} entries but the folders "
                f"{[f for f, _ in LIVE_FOLDERS]} hold img1..imgK with K = {sizes} "
                f"(sum {sum(sizes)}); expected {published} (sum {sum(published)})"
            )
        return sizes

    def read(self) -> pd.DataFrame:
        dmos_file = self.require("dmos_realigned.mat")
        names_file = self.require("refnames_all.mat")
        data = read_mat("live", dmos_file, ["dmos_new", "orgs"])
        dmos = np.asarray(data["dmos_new"], dtype=np.float64).reshape(-1)
        orgs = np.asarray(data["orgs"], dtype=np.float64).reshape(-1)
        refnames = mat_strings(read_mat("live", names_file, ["refnames_all"])["refnames_all"])
        if not len(dmos) == len(orgs) == len(refnames):
            raise DatasetError(
                f"live: dmos_new ({len(dmos)}), orgs ({len(orgs)}) and refnames_all "
                f"({len(refnames)}) must have one entry per image; the .mat files disagree"
            )
        paths, refs, types, raw = [], [], [], []
        i = 0
        for t, ((folder, _), size) in enumerate(
            zip(LIVE_FOLDERS, self._folder_sizes(len(dmos)), strict=True), start=1
        ):
            for k in range(1, size + 1):
                if orgs[i] != 1:
                    paths.append(str(self.root / folder / f"img{k}.bmp"))
                    refs.append(Path(refnames[i]).stem)
                    types.append(t)
                    raw.append(dmos[i])
                i += 1
        return make_manifest(
            paths, raw, dataset="live", higher_is_better=False, refs=refs, dist_types=types
        )

    def references(self) -> dict[str, Path]:
        """Reference name -> ``refimgs/<name>.bmp``."""
        folder = self.root / "refimgs"
        return {p.stem: p for p in sorted(folder.glob("*")) if p.suffix.lower() == ".bmp"}
