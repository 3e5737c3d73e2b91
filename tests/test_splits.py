"""Splits: by reference / by image, seeded, round-trip through split files, named subsets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from syndr_lightning.data.datasets import load_dataset
from syndr_lightning.data.manifest import make_manifest
from syndr_lightning.data.splits import (
    DGQA_SUBSETS,
    KADID_CROSS_EXCLUDE,
    load_split,
    resolve_kadid_refs,
    resolve_types,
    save_split,
    split_auto,
    split_by_image,
    split_by_reference,
)
from syndr_lightning.fakedata.fixtures import write_fixture
from syndr_lightning.utils.errors import ConfigError, DatasetError, InputError


def _synthetic(n_refs: int = 10, per_ref: int = 4) -> pd.DataFrame:
    paths = [f"/data/set/r{r}_{k}.png" for r in range(n_refs) for k in range(per_ref)]
    refs = [f"r{r}" for r in range(n_refs) for _ in range(per_ref)]
    scores = np.linspace(1, 5, len(paths))
    return make_manifest(paths, scores, dataset="toy", refs=refs)


def _authentic(n: int = 20) -> pd.DataFrame:
    return make_manifest([f"/data/auth/{i}.jpg" for i in range(n)], np.arange(n), dataset="auth")


def test_split_by_reference_has_no_reference_on_both_sides() -> None:
    out = split_by_reference(_synthetic(), val_fraction=0.3, seed=1)
    sides = out.groupby("ref")["split"].nunique()
    assert (sides == 1).all()
    assert set(out["split"]) == {"train", "val"}
    assert out.loc[out["split"] == "val", "ref"].nunique() == 3


def test_split_is_seeded() -> None:
    m = _synthetic(20)
    a = split_by_reference(m, 0.25, seed=3)["split"].tolist()
    b = split_by_reference(m, 0.25, seed=3)["split"].tolist()
    c = split_by_reference(m, 0.25, seed=4)["split"].tolist()
    assert a == b
    assert a != c


def test_intra_dataset_80_20_with_test_fraction() -> None:
    out = split_by_reference(_synthetic(10), val_fraction=0.0, seed=0, test_fraction=0.2)
    assert set(out["split"]) == {"train", "test"}
    assert out.loc[out["split"] == "test", "ref"].nunique() == 2
    three = split_by_reference(_synthetic(10), 0.1, seed=0, test_fraction=0.2)
    assert three.groupby("split")["ref"].nunique().to_dict() == {"test": 2, "train": 7, "val": 1}


def test_split_by_image_and_auto() -> None:
    out = split_by_image(_authentic(20), val_fraction=0.25, seed=0)
    assert (out["split"] == "val").sum() == 5
    auto = split_auto(_authentic(20), seed=0)
    assert (auto["split"] == "test").sum() == 4
    auto_ref = split_auto(_synthetic(10), seed=0)
    assert (auto_ref.groupby("ref")["split"].nunique() == 1).all()


def test_split_errors_are_clear() -> None:
    with pytest.raises(DatasetError, match="split_by_image"):
        split_by_reference(_authentic(), 0.2)
    with pytest.raises(ConfigError, match="val_fraction"):
        split_by_reference(_synthetic(), 1.5)
    with pytest.raises(DatasetError, match="at least one"):
        split_by_reference(_synthetic(n_refs=2), 0.5, test_fraction=0.4)
    with pytest.raises(InputError, match="split"):
        save_split(_synthetic(), "/nonexistent/x.json")


@pytest.mark.parametrize("kind", ["reference", "image"])
def test_split_file_round_trip(tmp_path, kind: str) -> None:
    m = _synthetic() if kind == "reference" else _authentic()
    fn = split_by_reference if kind == "reference" else split_by_image
    split = fn(m, 0.3, seed=7)
    path = save_split(split, tmp_path / "splits" / "s.json")
    assert json.loads(path.read_text())["kind"] == kind
    # a fresh, shuffled manifest at another root gets exactly the same assignment
    moved = m.sample(frac=1.0, random_state=0).reset_index(drop=True)
    moved["path"] = moved["path"].str.replace("/data/", "/elsewhere/deep/", regex=False)
    back = load_split(moved, path)
    new_paths = split["path"].str.replace("/data/", "/elsewhere/deep/")
    expected = dict(zip(new_paths, split["split"], strict=True))
    assert back["split"].tolist() == [expected[p] for p in back["path"]]


def test_split_file_mismatch_says_what_differs(tmp_path) -> None:
    path = save_split(split_by_reference(_synthetic(10), 0.2, seed=0), tmp_path / "s.json")
    with pytest.raises(DatasetError, match=r"1 references in the file are not in the data"):
        load_split(_synthetic(9), path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_split(_synthetic(), tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_split(_synthetic(), tmp_path / "bad.json")
    other = _synthetic(10)
    other["dataset"] = "other"
    with pytest.raises(DatasetError, match="made for dataset 'toy'"):
        load_split(other, path)


def test_named_subsets() -> None:
    assert KADID_CROSS_EXCLUDE == (5, 6, 17, 18, 52, 57, 69)
    cross = resolve_kadid_refs("cross74")
    assert len(cross) == 74 and "I06" not in cross and "I70" not in cross and "I05" in cross
    assert resolve_kadid_refs([0, "I02", "i3"]) == ("I01", "I02", "I03")
    assert resolve_types("livec") == DGQA_SUBSETS["livec"] == (1, 3, 10, 17, 18, 25)
    assert resolve_types("koniq10k") == (1, 3, 16, 17, 18, 25)
    assert resolve_types("bid") == (1, 3, 9, 21, 23, 25)
    assert resolve_types("pipal5") == (1, 2, 3, 4, 9)
    assert len(resolve_types("pipal6")) == 14
    for target in ("live", "csiq", "tid2013", "kadid10k"):
        assert resolve_types(target) == tuple(range(1, 26))
    with pytest.raises(ConfigError, match="unknown distortion-type subset"):
        resolve_types("nope")
    with pytest.raises(ConfigError, match="outside"):
        resolve_types([0])
    with pytest.raises(ConfigError, match="outside"):
        resolve_kadid_refs([81])


def test_kadid_loader_refs_and_types(tmp_path) -> None:
    root = write_fixture(
        "kadid10k", tmp_path / "kadid", ref_ids=[0, 5, 6, 7], types=[1, 3, 10], levels=[1, 5]
    )
    full = load_dataset("kadid10k", str(root))
    assert len(full) == 4 * 3 * 2
    cross = load_dataset("kadid10k", str(root), refs="cross74", types="livec")
    assert sorted(cross["ref"].unique()) == ["I01", "I08"]
    assert set(cross["dist_type"]) == {1, 3, 10}
    # normalisation is over the whole dataset, so scores do not depend on the subset
    merged = cross.merge(full, on="path", suffixes=("", "_full"))
    assert np.allclose(merged["score"], merged["score_full"])
    only = load_dataset("kadid10k", str(root), refs=[7], types=[10])
    assert len(only) == 2 and set(only["ref"]) == {"I08"}
