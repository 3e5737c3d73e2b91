"""Loaders read tiny fixtures in every official format: counts, direction, normalisation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from syndr_lightning.data.datasets import (
    REGISTRY,
    check_dataset,
    dataset_names,
    get_loader,
    load_dataset,
)
from syndr_lightning.data.manifest import MANIFEST_COLUMNS, validate_manifest
from syndr_lightning.fakedata.fixtures import write_fixture
from syndr_lightning.utils.errors import ConfigError, DatasetError

# name -> (fixture options, expected images, expected references or None)
CASES: dict[str, tuple[dict, int, int | None]] = {
    "kadid10k": ({"n_refs": 2, "types": [1, 3], "levels": [1, 3, 5]}, 12, 2),
    "kadis700k": ({"n_refs": 3}, 3, 3),
    "livec": ({"n_images": 5}, 5, None),
    "koniq10k": ({"n_images": 4}, 4, None),
    "bid": ({"n_images": 4}, 4, None),
    "live": ({"n_refs": 2}, 10, 2),
    "csiq": ({"n_refs": 2, "levels": 1}, 12, 2),
    "tid2013": ({"n_refs": 2, "types": [1, 2], "levels": [1, 5]}, 8, 2),
    "pipal": ({"n_refs": 2}, 14, 2),
    "spaq": ({"n_images": 4}, 4, None),
    "csv": ({"n_refs": 2, "n_images": 2}, 4, 2),
    "folder": ({"n_images": 3}, 3, None),
}
UNLABELED = {"kadis700k", "folder"}


def test_every_registered_dataset_has_a_case() -> None:
    official = {"kadid10k", "kadis700k", "livec", "koniq10k", "bid", "live", "csiq"}
    official |= {"tid2013", "pipal", "spaq", "csv", "folder"}
    assert official <= set(dataset_names())
    assert set(CASES) == official


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_round_trip(tmp_path: Path, name: str) -> None:
    options, n_images, n_refs = CASES[name]
    root = write_fixture(name, tmp_path / name, **options)
    df = load_dataset(name, root)
    assert list(df.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert len(df) == n_images
    assert all(Path(p).is_file() for p in df["path"])
    assert set(df["dataset"]) == {name}
    if name in UNLABELED:
        assert df["score"].isna().all()
    else:
        validate_manifest(df)
        assert df["score"].min() == pytest.approx(0.0)
        assert df["score"].max() == pytest.approx(10.0)
    if n_refs is None:
        assert df["ref"].isna().all() or name == "folder"
    else:
        assert df["ref"].nunique() == n_refs
    report = check_dataset(name, root)
    assert report["usable"], report["problems"]
    assert report["images"] == n_images
    assert report["references"] == n_refs
    info = REGISTRY[name].info
    assert report["higher_is_better_raw"] is info.higher_is_better_raw
    if info.published_images is not None:  # the tiny copy differs from the published count
        assert any("published" in p for p in report["problems"])


@pytest.mark.parametrize("name", ["live", "csiq"])
def test_dmos_sets_are_flipped(tmp_path: Path, name: str) -> None:
    df = load_dataset(name, write_fixture(name, tmp_path / name, n_refs=2))
    best = df.loc[df["raw_score"].idxmin()]
    worst = df.loc[df["raw_score"].idxmax()]
    assert best["score"] == pytest.approx(10.0)
    assert worst["score"] == pytest.approx(0.0)
    assert np.corrcoef(df["raw_score"], df["score"])[0, 1] < -0.99


def test_kadid_dmos_column_is_higher_is_better(tmp_path: Path) -> None:
    root = write_fixture("kadid10k", tmp_path / "k", n_refs=1, types=[1], levels=[1, 5])
    df = load_dataset("kadid10k", root)
    assert df.loc[df["raw_score"].idxmax(), "score"] == pytest.approx(10.0)
    assert df.set_index("level").loc[1, "score"] > df.set_index("level").loc[5, "score"]
    table = pd.read_csv(root / "dmos.csv")
    assert list(table.columns) == ["dist_img", "ref_img", "dmos", "var"]
    refs = get_loader("kadid10k")(root).references()
    assert refs["I01"] == root / "images" / "I01.png"


def test_livec_drops_the_seven_training_images(tmp_path: Path) -> None:
    df = load_dataset("livec", write_fixture("livec", tmp_path / "c", n_images=3))
    assert len(df) == 3
    assert not any(Path(p).name.startswith("t") for p in df["path"])
    assert not any("trainingImages" in p for p in df["path"])


def test_koniq_score_column_and_resolution(tmp_path: Path) -> None:
    root = write_fixture("koniq10k", tmp_path / "q", n_images=4, resolution="1024x768")
    mos = load_dataset("koniq10k", root)
    z = load_dataset("koniq10k", root, score="MOS_zscore", resolution="1024x768")
    assert mos["raw_score"].max() <= 5 and z["raw_score"].max() > 5
    assert "1024x768" in mos["path"].iloc[0]
    with pytest.raises(ConfigError, match="MOS_zscore"):
        load_dataset("koniq10k", root, score="mean")
    with pytest.raises(DatasetError, match="512x384"):
        load_dataset("koniq10k", root, resolution="512x384")


def test_csiq_xlsx_csv_and_flat_layouts_agree(tmp_path: Path) -> None:
    a = load_dataset("csiq", write_fixture("csiq", tmp_path / "a", n_refs=2, levels=2))
    b = load_dataset("csiq", write_fixture("csiq", tmp_path / "b", n_refs=2, levels=2, csv=True))
    c = load_dataset("csiq", write_fixture("csiq", tmp_path / "c", n_refs=2, levels=2, flat=True))
    for other in (b, c):
        assert np.allclose(a["raw_score"], other["raw_score"])
        assert a["ref"].tolist() == other["ref"].tolist()
        assert a["dist_type"].tolist() == other["dist_type"].tolist()
    assert set(a["ref"]) == {"1600", "aerial_city"}  # numeric sheet cell, capitalised files
    assert all("dst_imgs_all" in p for p in c["path"])
    assert set(a["dist_type"]) == {1, 2, 3, 4, 5, 6}


def test_tid2013_case_quirks_and_references(tmp_path: Path) -> None:
    root = write_fixture("tid2013", tmp_path / "t", n_refs=3, types=[1], levels=[1])
    df = load_dataset("tid2013", root)
    assert sorted(df["ref"]) == ["I01", "I02", "I03"]
    assert any(Path(p).name.startswith("I03") for p in df["path"])  # upper-case file
    refs = get_loader("tid2013")(root).references()
    assert sorted(refs) == ["I01", "I02", "I03"] and refs["I03"].name == "i03.bmp"


def test_pipal_has_distortion_class(tmp_path: Path) -> None:
    df = load_dataset("pipal", write_fixture("pipal", tmp_path / "p", n_refs=1, per_class=2))
    assert sorted(df["dist_class"].unique()) == list(range(7))
    assert set(df["dist_type"]) == {0, 1}


def test_kadis_distorted_images(tmp_path: Path) -> None:
    root = write_fixture("kadis700k", tmp_path / "s", n_refs=2, dist_imgs=True, types=[1, 3])
    refs = load_dataset("kadis700k", root, max_refs=1)
    assert len(refs) == 1
    dist = load_dataset("kadis700k", root, distorted=True)
    assert len(dist) == 2 * 2 * 3
    assert set(dist["dist_type"]) == {1, 3} and set(dist["level"]) == {1, 3, 5}
    assert len(get_loader("kadis700k")(root).references()) == 2


def _damage_missing_image(root: Path) -> None:
    next(p for p in sorted(root.rglob("*.png")) if "_" in p.name).unlink()


def test_clear_errors_for_broken_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("kadid10k", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("kadid", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['colour'\]"):
        load_dataset("bid", tmp_path, colour=True)

    kadid = write_fixture("kadid10k", tmp_path / "k", n_refs=1, types=[1], levels=[1, 2])
    broken = tmp_path / "k2"
    shutil.copytree(kadid, broken)
    _damage_missing_image(broken)
    with pytest.raises(DatasetError, match=r"1 of 2 images .* missing"):
        load_dataset("kadid10k", broken)
    (broken / "dmos.csv").write_text("dist_img,ref_img,mos\nI01_01_01.png,I01.png,3\n")
    with pytest.raises(DatasetError, match=r"lacks columns \['dmos'\]"):
        load_dataset("kadid10k", broken)
    (broken / "dmos.csv").write_text("dist_img,ref_img,dmos\nfoo.png,I01.png,3\n")
    with pytest.raises(DatasetError, match=r"I01_01_01\.png"):
        load_dataset("kadid10k", broken)
    (broken / "dmos.csv").unlink()
    with pytest.raises(DatasetError, match=r"dmos\.csv"):
        load_dataset("kadid10k", broken)


def test_clear_errors_for_mat_xlsx_and_text_files(tmp_path: Path) -> None:
    import scipy.io

    livec = write_fixture("livec", tmp_path / "c", n_images=2)
    scipy.io.savemat(livec / "Data" / "AllMOS_release.mat", {"MOS": np.ones((1, 9))})
    with pytest.raises(DatasetError, match=r"lacks keys \['AllMOS_release'\].*found \['MOS'\]"):
        load_dataset("livec", livec)
    (livec / "Data" / "AllMOS_release.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset("livec", livec)

    bid = write_fixture("bid", tmp_path / "b", n_images=2)
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Image", "Grade"])
    book.save(bid / "DatabaseGrades.xlsx")
    with pytest.raises(DatasetError, match="no header row with columns"):
        load_dataset("bid", bid)

    csiq = write_fixture("csiq", tmp_path / "q", n_refs=1, levels=1, csv=True)
    text = (csiq / "csiq.DMOS.csv").read_text().replace("blur", "smear")
    (csiq / "csiq.DMOS.csv").write_text(text)
    with pytest.raises(DatasetError, match="dst_type 'smear'"):
        load_dataset("csiq", csiq)

    tid = write_fixture("tid2013", tmp_path / "t", n_refs=1, types=[1], levels=[1])
    (tid / "mos_with_names.txt").write_text("5.1 i01_01_1.bmp\nfive i01_01_2.bmp\n")
    with pytest.raises(DatasetError, match="line 2"):
        load_dataset("tid2013", tid)

    live = write_fixture("live", tmp_path / "l", n_refs=2)
    (live / "jp2k" / "img3.bmp").unlink()  # the last jp2k entry: the folder sizes disagree
    with pytest.raises(DatasetError, match=r"dmos_realigned\.mat has 15 entries"):
        load_dataset("live", live)


def test_generic_csv_and_folder_errors(tmp_path: Path) -> None:
    csv = write_fixture("csv", tmp_path / "g", n_refs=1, n_images=2)
    flipped = load_dataset("csv", csv, higher_is_better=False, dataset_name="mine")
    assert set(flipped["dataset"]) == {"mine"}
    assert flipped.loc[flipped["raw_score"].idxmin(), "score"] == pytest.approx(10.0)
    with pytest.raises(DatasetError, match="CSV file itself"):
        load_dataset("csv", csv.parent)
    (tmp_path / "bad.csv").write_text("path,mos\na.png,3\n")
    with pytest.raises(DatasetError, match=r"lacks columns \['score'\]"):
        load_dataset("csv", tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("path,score\na.png,good\n")
    with pytest.raises(DatasetError, match="must be numeric"):
        load_dataset("csv", tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("path,score,level\na.png,3,1.5\n")
    with pytest.raises(DatasetError, match="must hold integers"):
        load_dataset("csv", tmp_path / "bad.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_dataset("folder", tmp_path / "empty")


def test_check_flags_scores_outside_the_published_range(tmp_path: Path) -> None:
    root = write_fixture("tid2013", tmp_path / "t", n_refs=1, types=[1], levels=[1, 2])
    lines = (root / "mos_with_names.txt").read_text().splitlines()
    lines[0] = "55.0 " + lines[0].split()[1]  # a 0..100 score in a 0..9 dataset
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    report = check_dataset("tid2013", root)
    assert report["usable"]
    assert any("outside the published range" in p for p in report["problems"])


def test_fixture_writer_rejects_unknown_names_and_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no fixture writer"):
        write_fixture("imagenet", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown options \['n_images'\]"):
        write_fixture("kadid10k", tmp_path, n_images=3)


def test_published_layouts_match_the_published_counts(tmp_path: Path) -> None:
    live = write_fixture("live", tmp_path / "live", size=(8, 8), published=True)
    report = check_dataset("live", live)
    assert report["usable"] and report["images"] == 779 and report["references"] == 29
    assert not any("published" in p for p in report["problems"]), report["problems"]

    kadid = write_fixture("kadid10k", tmp_path / "kadid", size=(8, 8), ref_ids=range(81))
    report = check_dataset("kadid10k", kadid)
    assert report["images"] == 10_125 and report["references"] == 81
    assert report["problems"] == []
    cross = load_dataset("kadid10k", kadid, refs="cross74")
    assert len(cross) == 74 * 25 * 5
    assert len(load_dataset("kadid10k", kadid, refs="cross74", types="livec")) == 74 * 6 * 5
