"""Authentic-distortion test sets: LIVE Challenge, KonIQ-10k, BID, SPAQ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syndr_lightning.data.datasets.base import (
    BaseDataset,
    DatasetInfo,
    FileIndex,
    mat_strings,
    read_csv,
    read_mat,
    read_xlsx,
    register,
    to_number,
)
from syndr_lightning.data.manifest import make_manifest
from syndr_lightning.utils.errors import ConfigError, DatasetError


@register
class LiveChallengeDataset(BaseDataset):
    """LIVE In the Wild Image Quality Challenge (LIVEC).

    ``Data/AllImages_release.mat`` (key ``AllImages_release``) and
    ``Data/AllMOS_release.mat`` (key ``AllMOS_release``); images in ``Images/``. The
    first 7 entries are the challenge's training images and are dropped.
    """

    info = DatasetInfo(
        name="livec",
        kind="authentic",
        higher_is_better_raw=True,
        raw_range=(0.0, 100.0),
        published_images=1_162,
        published_references=None,
        label_file="Data/AllImages_release.mat",
        url="https://live.ece.utexas.edu/research/ChallengeDB/index.html",
    )
    N_TRAINING_ENTRIES = 7

    def read(self) -> pd.DataFrame:
        names_file = self.require("Data/AllImages_release.mat")
        mos_file = self.require("Data/AllMOS_release.mat")
        names = mat_strings(
            read_mat("livec", names_file, ["AllImages_release"])["AllImages_release"]
        )
        mos = np.asarray(
            read_mat("livec", mos_file, ["AllMOS_release"])["AllMOS_release"], dtype=np.float64
        ).reshape(-1)
        if len(names) != len(mos):
            raise DatasetError(
                f"livec: {str(names_file)!r} lists {len(names)} images but {str(mos_file)!r} "
                f"has {len(mos)} scores; both files must come from the same release"
            )
        skip = self.N_TRAINING_ENTRIES
        index = FileIndex(self.root / "Images")
        paths = []
        for name in names[skip:]:
            found = index.find(name)
            paths.append(str(found if found is not None else self.root / "Images" / name))
        return make_manifest(paths, mos[skip:], dataset="livec", higher_is_better=True)


@register
class KonIQ10kDataset(BaseDataset):
    """KonIQ-10k: ``koniq10k_scores_and_distributions.csv``, images in ``512x384/``
    (or ``1024x768/``).

    Options: ``score`` = ``"MOS"`` (1..5, default, as the reference code) or
    ``"MOS_zscore"``; ``resolution`` = ``"512x384"`` | ``"1024x768"`` (default: the
    first folder present).
    """

    info = DatasetInfo(
        name="koniq10k",
        kind="authentic",
        higher_is_better_raw=True,
        raw_range=(1.0, 5.0),
        published_images=10_073,
        published_references=None,
        label_file="koniq10k_scores_and_distributions.csv",
        url="http://database.mmsp-kn.de/koniq-10k-database.html",
    )
    RESOLUTIONS = ("512x384", "1024x768")

    def __init__(
        self,
        root: str | Path,
        score: str = "MOS",
        resolution: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        if score not in ("MOS", "MOS_zscore"):
            raise ConfigError(f"koniq10k: score must be 'MOS' or 'MOS_zscore'; got {score!r}")
        if resolution is not None and resolution not in self.RESOLUTIONS:
            raise ConfigError(
                f"koniq10k: resolution must be one of {self.RESOLUTIONS}; got {resolution!r}"
            )
        self.score = score
        self.resolution = resolution

    def _image_dir(self) -> Path:
        if self.resolution is not None:
            return self.require_any(self.resolution)
        for res in self.RESOLUTIONS:
            # as unpacked: ROOT/512x384, or the archive's own folder ROOT/koniq10k_512x384/512x384
            for folder in (self.root / res, *sorted(self.root.glob(f"*/{res}"))):
                if folder.is_dir():
                    return folder
        raise DatasetError(
            f"koniq10k: no image folder {' or '.join(self.RESOLUTIONS)} under "
            f"{str(self.root)!r}; extract the image archive next to the CSV"
        )

    def read(self) -> pd.DataFrame:
        label = self.require_any(self.info.label_file or "")
        table = read_csv("koniq10k", label)
        self.require_columns(table, ["image_name", self.score], label)
        folder = self._image_dir()
        paths = [str(folder / str(n).strip()) for n in table["image_name"]]
        raw = to_number("koniq10k", table[self.score], label, self.score).to_numpy()
        return make_manifest(paths, raw, dataset="koniq10k", higher_is_better=True)


@register
class BIDDataset(BaseDataset):
    """BID (blur image database): ``DatabaseGrades.xlsx`` (``Image Number``,
    ``Average Subjective Grade``), images ``DatabaseImage%04d.JPG`` (found anywhere
    under root, any case).
    """

    info = DatasetInfo(
        name="bid",
        kind="authentic",
        higher_is_better_raw=True,
        raw_range=(0.0, 5.0),
        published_images=586,
        published_references=None,
        label_file="DatabaseGrades.xlsx",
        url="https://www.lps.ufrj.br/profs/eduardo/ImageDatabase.htm",
    )

    def read(self) -> pd.DataFrame:
        label = self.require_any("DatabaseGrades.xlsx")
        cols = ["Image Number", "Average Subjective Grade"]
        table = read_xlsx("bid", label, cols)
        numbers = to_number("bid", table["Image Number"], label, "Image Number")
        grades = to_number("bid", table["Average Subjective Grade"], label, cols[1])
        keep = numbers.notna().to_numpy()
        index = FileIndex(self.root)
        paths = []
        for n in numbers[keep]:
            name = f"DatabaseImage{int(n):04d}.JPG"
            found = index.find(name)
            paths.append(str(found if found is not None else self.root / "ImageDatabase" / name))
        return make_manifest(paths, grades[keep].to_numpy(), dataset="bid")


@register
class SPAQDataset(BaseDataset):
    """SPAQ: ``Annotations/MOS and Image attribute scores.xlsx`` (``Image name``,
    ``MOS``); images found by name under root (``TestImage/`` as published).
    """

    info = DatasetInfo(
        name="spaq",
        kind="authentic",
        higher_is_better_raw=True,
        raw_range=(0.0, 100.0),
        published_images=11_125,
        published_references=None,
        label_file="Annotations/MOS and Image attribute scores.xlsx",
        url="https://github.com/h4nwei/SPAQ",
    )

    def read(self) -> pd.DataFrame:
        label = self.require_any(self.info.label_file or "", "MOS and Image attribute scores.xlsx")
        table = read_xlsx("spaq", label, ["Image name", "MOS"])
        table = table[table["Image name"].notna()]
        mos = to_number("spaq", table["MOS"], label, "MOS").to_numpy()
        index = FileIndex(self.root / "TestImage", self.root)
        paths = []
        for name in table["Image name"].astype(str).str.strip():
            found = index.find(name)
            paths.append(str(found if found is not None else self.root / "TestImage" / name))
        return make_manifest(paths, mos, dataset="spaq")
