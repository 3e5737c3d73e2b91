"""DDCUp's upsampled set (build, cache, atomicity, pre-distorted layout) and SynDR runs."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from syndr_lightning.data import upsample
from syndr_lightning.data.datasets import get_loader, load_dataset
from syndr_lightning.data.syndr import SynDRDataModule
from syndr_lightning.data.upsample import (
    UpsampleSpec,
    build_upsampled_set,
    label_cube,
    load_cached,
)
from syndr_lightning.fakedata.fixtures import write_fixture
from syndr_lightning.protocol import Protocol
from syndr_lightning.reshape.params import DDCUpParams, ReshapeParams
from syndr_lightning.utils.errors import ConfigError, DatasetError

# Every candidate is kept (select=False) so the set is never empty whatever the random
# tiny encoder's features; the selection rule itself is tested in test_selection_wiring
# and, against a brute-force oracle, in the reshaping tests.
TINY = DDCUpParams(
    encoder="tiny_cnn", encoder_weights="none", encoder_crop=32, select_candidates=False
)
SPEC = UpsampleSpec((1, 3), TINY)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("small")
    kadid = write_fixture("kadid10k", root / "kadid", n_refs=5, types=[1, 3])
    kadis = write_fixture("kadis700k", root / "kadis", n_refs=10, dist_imgs=True)
    manifest = load_dataset("kadid10k", str(kadid), types=[1, 3])
    refs = get_loader("kadid10k")(kadid, types=[1, 3]).references()
    cands = get_loader("kadis700k")(kadis).references()
    return {"manifest": manifest, "refs": refs, "cands": cands, "kadis": kadis}


def test_build_then_reuse(small: dict, tmp_path: Path):
    first = build_upsampled_set(
        small["manifest"], small["refs"], small["cands"], tmp_path, SPEC, progress=False
    )
    assert not first.reused
    df = first.manifest
    assert first.meta["selected"] == sorted(small["cands"])
    assert len(df) == len(small["cands"]) * 2 * 3  # types x levels 1, 3, 5
    assert set(df["level"]) == {1, 3, 5} and set(df["dist_type"]) == {1, 3}
    assert (df["source"] == "upsampled").all()
    assert df["score"].between(0, 10).all()
    assert all(Path(p).is_file() and Path(p).is_relative_to(first.directory) for p in df["path"])
    # pseudo-labels follow the training labels: level 5 is worse than level 1 on average
    assert df[df["level"] == 5]["score"].mean() < df[df["level"] == 1]["score"].mean()
    again = build_upsampled_set(
        small["manifest"], small["refs"], small["cands"], tmp_path, SPEC, progress=False
    )
    assert again.reused and again.directory == first.directory
    pd.testing.assert_frame_equal(again.manifest, df)
    # anything that changes the result changes the key
    other = UpsampleSpec((1, 3), replace(TINY, T_ref=0.2))
    third = build_upsampled_set(
        small["manifest"], small["refs"], small["cands"], tmp_path, other, progress=False
    )
    assert third.directory != first.directory


def test_failed_build_leaves_nothing_trusted(small: dict, tmp_path: Path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("killed midway")

    monkeypatch.setattr(upsample, "_assemble", boom)  # after GenDist wrote its images
    with pytest.raises(RuntimeError, match="killed midway"):
        build_upsampled_set(
            small["manifest"], small["refs"], small["cands"], tmp_path, SPEC, progress=False
        )
    assert list((tmp_path / "ddcup").iterdir()) == []
    monkeypatch.undo()
    # a SIGKILLed build leaves its temporary folder: a later run neither trusts nor keeps it
    key = upsample.cache_key(
        SPEC,
        small["refs"],
        label_cube(small["manifest"], sorted(small["refs"]), (1, 3), (1, 3, 5)),
        small["cands"],
    )
    stale = tmp_path / "ddcup" / f".{key}.abc.tmp"
    stale.mkdir()
    (stale / "owner.json").write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname()[1]}))
    (stale / "manifest.csv").write_text("path,score\n")
    built = build_upsampled_set(
        small["manifest"], small["refs"], small["cands"], tmp_path, SPEC, progress=False
    )
    assert not built.reused and built.key == key
    assert not stale.exists()
    # a damaged cache (an image deleted by hand) is not trusted either
    os.remove(built.manifest["path"].iloc[0])
    assert load_cached(built.directory) is None


def test_predistorted_reference_layout(small: dict, tmp_path: Path):
    add = tmp_path / "kadid_add81"
    shutil.copytree(small["kadis"] / "ref_imgs", add / "ref_imgs")
    shutil.copytree(small["kadis"] / "dist_imgs", add / "dist_imgs")
    res = build_upsampled_set(
        small["manifest"], small["refs"], {}, tmp_path / "c", SPEC, predistorted=add,
        progress=False,
    )  # fmt: skip
    assert len(res.manifest) == len(res.meta["selected"]) * 6
    assert all("/dist_imgs/" in p and p.endswith(".bmp") for p in res.manifest["path"])
    one = res.meta["selected"][0]
    os.remove(add / "dist_imgs" / f"{one}_03_05.bmp")
    with pytest.raises(DatasetError, match=r"_03_05\.bmp"):
        build_upsampled_set(
            small["manifest"], small["refs"], {}, tmp_path / "c2", SPEC, predistorted=add,
            progress=False,
        )  # fmt: skip


def test_selection_wiring_and_bad_inputs(small: dict, tmp_path: Path):
    from syndr_lightning.reshape import ddcup_select

    spec = UpsampleSpec((1, 3), replace(TINY, select_candidates=True))
    res = build_upsampled_set(
        small["manifest"], small["refs"], small["cands"], tmp_path, spec, progress=False
    )
    names = sorted(small["cands"])
    t = upsample.reference_features([small["refs"][r] for r in sorted(small["refs"])], spec, None)
    c = upsample.reference_features([small["cands"][n] for n in names], spec, None)
    assert res.meta["selected"] == [names[i] for i in ddcup_select(t, c)]
    assert len(res.manifest) == len(res.meta["selected"]) * 6
    partial = small["manifest"][
        ~((small["manifest"]["ref"] == "I02") & (small["manifest"]["level"] == 3))
    ]
    with pytest.raises(DatasetError, match="'I02', type 1, level 3"):
        label_cube(partial, ["I01", "I02"], (1, 3), (1, 3, 5))
    with pytest.raises(ConfigError, match=r"reshape\.encoder_weights='/nowhere/w\.pth'"):
        bad = UpsampleSpec((1, 3), replace(TINY, encoder_weights="/nowhere/w.pth"))
        upsample.reference_features([small["refs"]["I01"]], bad, None)
    with pytest.raises(ConfigError, match="levels"):
        UpsampleSpec((1,), DDCUpParams(levels=(0, 6)))
    with pytest.raises(ConfigError, match="weights"):
        UpsampleSpec((1,), DDCUpParams(weights="median"))


def _upsampled_dm(small: dict, tmp_path: Path, reshape: dict | None = None, **kwargs: Any):
    """A KADID DataModule (types 1 and 3) upsampled from the small candidate pool."""
    kadid = Path(small["manifest"]["path"].iloc[0]).parent.parent
    return SynDRDataModule(
        train={"name": "kadid10k", "root": str(kadid), "options": {"types": [1, 3]}},
        candidates={"name": "folder", "root": str(small["kadis"] / "ref_imgs")},
        reshape=ReshapeParams.from_config(
            {
                "encoder": "tiny_cnn",
                "encoder_weights": "none",
                "encoder_crop": 32,
                "select_candidates": False,
                **(reshape or {}),
            }
        ),
        cache_dir=str(tmp_path),
        crop_size=16,
        **kwargs,
    )


def _fake_drcdown(dm: SynDRDataModule, kept: list[int], n: int) -> None:
    """Make ``dm``'s DRCDown keep rows ``kept`` of ``n`` in every epoch, without a model."""

    class FakeSelector:
        def __init__(self) -> None:
            self.results: dict = {}

        def compute(self, model, epoch, **kwargs):
            from syndr_lightning.reshape.engine import EpochSubset

            self.results[epoch] = EpochSubset(epoch, np.array(kept), n)
            return self.results[epoch]

    dm.drcdown_selector = FakeSelector()  # type: ignore[assignment]
    fake_trainer = {
        "lightning_module": object(),
        "is_global_zero": True,
        "progress_bar_callback": None,
    }
    dm.trainer = type("T", (), fake_trainer)()  # type: ignore[assignment]


def test_datamodule_serves_original_plus_upsampled(small: dict, tmp_path: Path):
    kadid = Path(small["manifest"]["path"].iloc[0]).parent.parent
    dm = _upsampled_dm(small, tmp_path, {"drcdown": False}, val_fraction=0.2)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.ddcup_build is not None  # built once in prepare_data, kept for setup
    n_up = len(dm.ddcup_build.upsampled.manifest)
    assert n_up > 0 and len(dm.train_manifest) == dm.n_original + n_up
    assert dm.n_original == 4 * 2 * 5  # 4 of 5 references train, 1 validates
    assert len(dm.train_indices(0)) == len(dm.train_manifest)
    protocol = Protocol.from_facts(dm.facts(), dm.reshape, dm.seed, {}).to_json()
    assert protocol["n_upsampled"] == n_up and protocol["rule"] == "reference"
    with pytest.raises(ConfigError, match=r"data\.candidates"):
        SynDRDataModule(train={"name": "kadid10k", "root": str(kadid)}, cache_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="unknown keys"):
        ReshapeParams.from_config({"Tf": 0.1, "ddcup": False})
    # one door: a mapping is not built into the object a second time (RunConfig builds it)
    with pytest.raises(ConfigError, match="takes a ReshapeParams"):
        SynDRDataModule(train={"name": "kadid10k", "root": str(kadid)}, reshape={"T_f": 0.05})


def test_heldout_and_grouped_test_sets(tmp_path: Path):
    kadid = write_fixture("kadid10k", tmp_path / "kadid", n_refs=5, types=[1])
    pipal = write_fixture("pipal", tmp_path / "pipal", n_refs=2)
    dm = SynDRDataModule(
        train={"name": "kadid10k", "root": str(kadid), "options": {"types": [1]}},
        test=[{"name": "pipal", "root": str(pipal), "group_by": "dist_class"}],
        reshape=ReshapeParams(ddcup=False, drcdown=False),
        val_fraction=0.2,
        test_fraction=0.2,
        crop_size=16,
    )
    dm.setup("fit")
    dm.setup("test")  # idempotent
    names = dm.test_names
    assert names[:2] == ["pipal", "kadid10k_heldout"]
    classes = [n for n in names if n.startswith("pipal_dist_class")]
    assert len(classes) == dm.test_manifests["pipal"]["dist_class"].nunique() >= 2
    assert sum(len(dm.test_manifests[c]) for c in classes) == len(dm.test_manifests["pipal"])
    held = set(dm.test_manifests["kadid10k_heldout"]["ref"])
    assert len(held) == 1 and held.isdisjoint(set(dm.train_manifest["ref"]))
    assert held.isdisjoint(set(dm.val_manifest["ref"]))
    assert len(dm.test_dataloader()) == len(names)
    with pytest.raises(ConfigError, match="group_by"):
        SynDRDataModule(
            train={"name": "kadid10k", "root": str(kadid)},
            test=[{"name": "pipal", "root": str(pipal), "group_by": "colour"}],
            reshape=ReshapeParams(ddcup=False),
        )


def test_subset_mapping_keeps_upsampled_rows(small: dict, tmp_path: Path):
    dm = _upsampled_dm(small, tmp_path)
    dm.setup("fit")
    _fake_drcdown(dm, [0, 2, 5], dm.n_original)
    rows = dm.train_indices(0)
    n = len(dm.train_manifest)
    assert rows.tolist() == [0, 2, 5, *range(dm.n_original, n)]


def test_drcdown_on_upsampled_pools_every_row(small: dict, tmp_path: Path):
    dm = _upsampled_dm(small, tmp_path, drcdown_on_upsampled=True)
    dm.setup("fit")
    n = len(dm.train_manifest)
    assert dm.drcdown_selector is not None and len(dm.drcdown_selector.paths) == n
    assert n > dm.n_original
    _fake_drcdown(dm, [1, n - 1], n)
    assert dm.train_indices(0).tolist() == [1, n - 1]
