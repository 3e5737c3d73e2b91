"""KADID-10k (labeled synthetic training set) and KADIS-700k (unlabeled candidate refs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from syndr_lightning.data.datasets.base import (
    BaseDataset,
    DatasetInfo,
    read_csv,
    register,
    to_number,
)
from syndr_lightning.data.manifest import make_manifest
from syndr_lightning.data.splits import KADID_N_REFS, resolve_kadid_refs, resolve_types
from syndr_lightning.utils.errors import DatasetError

_KADID_NAME = re.compile(r"^I(\d{2})_(\d{2})_(\d{2})\.png$", re.IGNORECASE)
_KADIS_DIST = re.compile(r"^(.+)_(\d{2})_(\d{2})\.bmp$", re.IGNORECASE)


@register
class Kadid10kDataset(BaseDataset):
    """KADID-10k: ``dmos.csv`` (``dist_img,ref_img,dmos,var``) and ``images/``.

    Options: ``refs`` = ``"all"`` | ``"cross74"`` | list of 0-based ids or names
    (``I01``); ``types`` = a :data:`~syndr_lightning.data.splits.DGQA_SUBSETS` name or a
    list of type ids 1..25. Scores are normalised over the whole dataset before the
    selection, so an image's score does not depend on the subset. The ``dmos`` column is
    higher-is-better despite its name.
    """

    info = DatasetInfo(
        name="kadid10k",
        kind="synthetic",
        higher_is_better_raw=True,
        raw_range=(1.0, 5.0),
        published_images=10_125,
        published_references=81,
        label_file="dmos.csv",
        url="http://database.mmsp-kn.de/kadid-10k-database.html",
    )

    def __init__(
        self,
        root: str | Path,
        refs: str | list[int | str] | None = "all",
        types: str | list[int] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        self.refs = resolve_kadid_refs(refs)
        self.types = resolve_types(types)

    def filtered(self) -> bool:
        return len(self.refs) < KADID_N_REFS or len(self.types) < 25

    def read(self) -> pd.DataFrame:
        label = self.require("dmos.csv")
        table = read_csv(self.info.name, label)
        self.require_columns(table, ["dist_img", "ref_img", "dmos"], label)
        images = self.root / "images"
        paths, refs, types, levels = [], [], [], []
        for row, name in enumerate(table["dist_img"].astype(str)):
            match = _KADID_NAME.match(name.strip())
            if match is None:
                raise DatasetError(
                    f"kadid10k: row {row + 2} of {str(label)!r} has dist_img {name!r}; "
                    f"expected names like 'I01_01_01.png' (ref_type_level)"
                )
            ref, typ, lev = (int(g) for g in match.groups())
            paths.append(str(images / name.strip()))
            refs.append(f"I{ref:02d}")
            types.append(typ)
            levels.append(lev)
        raw = to_number(self.info.name, table["dmos"], label, "dmos").to_numpy()
        df = make_manifest(
            paths,
            raw,
            dataset=self.info.name,
            higher_is_better=True,
            refs=refs,
            dist_types=types,
            levels=levels,
        )
        keep = df["ref"].isin(self.refs) & df["dist_type"].isin(self.types)
        return df[keep.to_numpy()].reset_index(drop=True)

    def references(self) -> dict[str, Path]:
        """Reference name -> pristine image path (``images/I01.png`` or ``ref_imgs/``)."""
        out = {}
        for name in self.refs:
            for folder in ("images", "ref_imgs"):
                path = self.root / folder / f"{name}.png"
                if path.is_file():
                    out[name] = path
                    break
        return out


@register
class Kadis700kDataset(BaseDataset):
    """KADIS-700k: unlabeled references ``ref_imgs/*.png`` listed in
    ``kadis700k_ref_imgs.csv`` (``ref_im,dist_type_1,dist_type_2``).

    Options: ``distorted=True`` lists the pre-generated ``dist_imgs/<ref>_<tt>_<ll>.bmp``
    instead of the references; ``max_refs`` keeps the first N references of the list.
    Without the CSV the ``ref_imgs/`` folder is listed.
    """

    info = DatasetInfo(
        name="kadis700k",
        kind="unlabeled",
        higher_is_better_raw=True,
        raw_range=None,
        published_images=140_000,
        published_references=140_000,
        label_file="kadis700k_ref_imgs.csv",
        url="http://database.mmsp-kn.de/kadid-10k-database.html",
    )

    def __init__(
        self,
        root: str | Path,
        distorted: bool = False,
        max_refs: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        self.distorted = bool(distorted)
        if max_refs is not None and int(max_refs) < 1:
            raise DatasetError(f"kadis700k: max_refs must be >= 1 or None; got {max_refs}")
        self.max_refs = None if max_refs is None else int(max_refs)

    def filtered(self) -> bool:
        return self.distorted or self.max_refs is not None

    def _ref_names(self) -> list[str]:
        listing = self.root / "kadis700k_ref_imgs.csv"
        if listing.is_file():
            table = read_csv(self.info.name, listing)
            self.require_columns(table, ["ref_im"], listing)
            names = [str(n).strip() for n in table["ref_im"].dropna()]
        else:
            folder = self.require("ref_imgs")
            names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png")
        if self.max_refs is not None:
            names = names[: self.max_refs]
        return names

    def read(self) -> pd.DataFrame:
        names = self._ref_names()
        if not self.distorted:
            paths = [str(self.root / "ref_imgs" / n) for n in names]
            return make_manifest(
                paths, None, dataset=self.info.name, refs=[Path(n).stem for n in names]
            )
        folder = self.require("dist_imgs")
        wanted = {Path(n).stem for n in names}
        paths, refs, types, levels = [], [], [], []
        for path in sorted(folder.iterdir()):
            match = _KADIS_DIST.match(path.name)
            if match is None or match.group(1) not in wanted:
                continue
            paths.append(str(path))
            refs.append(match.group(1))
            types.append(int(match.group(2)))
            levels.append(int(match.group(3)))
        return make_manifest(
            paths, None, dataset=self.info.name, refs=refs, dist_types=types, levels=levels
        )

    def references(self) -> dict[str, Path]:
        """Reference name -> pristine image path."""
        return {Path(n).stem: self.root / "ref_imgs" / n for n in self._ref_names()}
