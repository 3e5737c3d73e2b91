"""Synthetic data generator, transforms, ManifestDataset and IQADataModule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from syndr_lightning.data.datamodule import IQADataModule, ManifestDataset
from syndr_lightning.data.datasets import load_dataset
from syndr_lightning.fakedata.synthetic import generate_synthetic_iqa
from syndr_lightning.utils.errors import ConfigError, DatasetError, InputError
from syndr_lightning.utils.transforms import EvalTransform, TrainTransform


def test_generator_is_deterministic_and_scores_fall_with_level(tmp_path: Path) -> None:
    a = generate_synthetic_iqa(tmp_path / "a", n_refs=3, n_types=2, n_levels=4, seed=5)
    b = generate_synthetic_iqa(tmp_path / "b", n_refs=3, n_types=2, n_levels=4, seed=5)
    ta, tb = pd.read_csv(a), pd.read_csv(b)
    assert list(ta.columns) == ["path", "score", "ref", "type", "level"]
    assert len(ta) == 3 * 2 * 4
    pd.testing.assert_frame_equal(ta, tb)
    for rel in ta["path"][:3]:
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
    means = ta.groupby("level")["score"].mean().to_numpy()
    assert np.all(np.diff(means) < 0)
    assert (tmp_path / "a" / "refs" / "ref_000.png").is_file()
    other = pd.read_csv(generate_synthetic_iqa(tmp_path / "c", n_refs=3, n_types=2, n_levels=4))
    assert not np.allclose(other["score"], ta["score"])  # the seed matters
    with pytest.raises(InputError, match="n_types must be at most 5"):
        generate_synthetic_iqa(tmp_path / "d", n_types=9)


def test_authentic_like_has_no_reference_columns(authentic_csv: Path) -> None:
    manifest = load_dataset("csv", str(authentic_csv))
    assert len(manifest) == 12 and manifest["ref"].isna().all()
    assert manifest["score"].between(0, 10).all()


def test_train_transform_resizes_small_images_and_crops() -> None:
    img = np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    out = TrainTransform(crop_size=24, hflip=True)(img)
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32
    flat = np.zeros((40, 40, 3), dtype=np.uint8) + np.array([124, 116, 104], np.uint8)
    assert TrainTransform(32, hflip=False)(flat).abs().max() < 0.01  # the ImageNet mean


def test_eval_transform_fixed_per_image_and_center() -> None:
    """The one test-time crop rule: crops follow (seed, image content), not the index."""
    img = np.random.default_rng(1).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    t = EvalTransform(crop_size=32, n_crops=5, mode="random", seed=0)
    a, b = t(img, index=7), t(img, index=7)
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)
    assert torch.equal(a, t(img.copy(), index=8))  # same image elsewhere: same crops
    other = img.copy()
    other[0, 0, 0] ^= 1
    assert not torch.equal(a[:, :, 1:, 1:], t(other)[:, :, 1:, 1:])  # another image
    assert not torch.equal(a, EvalTransform(32, 5, "random", seed=1)(img))
    center = EvalTransform(32, n_crops=5, mode="center")(img, index=0)
    assert center.shape == (1, 3, 32, 32)
    with pytest.raises(ConfigError, match="eval_crop_mode"):
        EvalTransform(32, mode="corners")


def test_manifest_dataset_items(synthetic_csv: Path) -> None:
    manifest = load_dataset("csv", str(synthetic_csv))
    ds = ManifestDataset(manifest, EvalTransform(32, 3))
    item = ds[4]
    assert item["image"].shape == (3, 3, 32, 32)
    assert item["score"].dtype == torch.float32 and int(item["index"]) == 4
    assert float(item["score"]) == pytest.approx(manifest["score"].iloc[4], rel=1e-6)
    broken = manifest.assign(path=manifest["path"].str.replace("images", "nowhere"))
    with pytest.raises(DatasetError, match="does not exist"):
        ManifestDataset(broken, EvalTransform(32, 1))[0]


def _dm(train: Path, **kw: object) -> IQADataModule:
    kw.setdefault("batch_size", 4)
    kw.setdefault("crop_size", 32)
    kw.setdefault("eval_crops", 2)
    return IQADataModule(train={"name": "csv", "root": str(train)}, **kw)  # type: ignore[arg-type]


def test_val_split_by_reference_and_split_file(synthetic_csv: Path, tmp_path: Path) -> None:
    split = tmp_path / "split.json"
    dm = _dm(synthetic_csv, val_fraction=0.34, split_file=str(split), seed=1)
    dm.setup("fit")
    assert dm.train_manifest is not None and dm.val_manifest is not None
    assert not set(dm.train_manifest["ref"]) & set(dm.val_manifest["ref"])
    assert len(dm.train_manifest) + len(dm.val_manifest) == 54
    assert split.is_file()
    # A different seed would split differently; the split file wins.
    again = _dm(synthetic_csv, val_fraction=0.34, split_file=str(split), seed=99)
    again.setup("fit")
    assert set(again.val_manifest["ref"]) == set(dm.val_manifest["ref"])  # type: ignore[index]


def test_val_split_by_image_without_refs(authentic_csv: Path) -> None:
    dm = _dm(authentic_csv, val_fraction=0.25)
    dm.setup("fit")
    assert len(dm.val_manifest) == 3 and len(dm.train_manifest) == 9  # type: ignore[arg-type]


def test_loaders_shapes_and_test_names(synthetic_csv: Path, authentic_csv: Path) -> None:
    dm = _dm(
        synthetic_csv,
        test=[
            {"name": "csv", "root": str(authentic_csv), "label": "auth"},
            {"name": "csv", "root": str(synthetic_csv), "label": "syn", "crop_mode": "center"},
        ],
        eval_batch_size=5,
    )
    dm.setup("fit")
    assert dm.test_names == ["auth", "syn"] and set(dm.test_manifests) == {"auth", "syn"}
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["score"].shape == (4,)
    val = next(iter(dm.val_dataloader()))
    assert val["image"].shape == (5, 2, 3, 32, 32)
    auth, syn = dm.test_dataloader()
    assert next(iter(auth))["image"].shape[1] == 2
    assert next(iter(syn))["image"].shape[1] == 1


def test_train_indices_override_selects_rows(synthetic_csv: Path) -> None:
    class EveryThird(IQADataModule):
        def train_indices(self, epoch: int) -> np.ndarray:
            return np.arange(0, len(self.train_manifest), 3)  # type: ignore[arg-type]

    dm = EveryThird(train={"name": "csv", "root": str(synthetic_csv)}, batch_size=100, crop_size=32)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert sorted(batch["index"].tolist()) == list(range(0, len(dm.train_manifest), 3))


def test_config_errors_name_the_key(tmp_path: Path, synthetic_csv: Path) -> None:
    missing = IQADataModule(train={"name": "csv", "root": str(tmp_path / "nope.csv")})
    with pytest.raises(DatasetError, match=r"data\.train\.root=.*nope\.csv"):
        missing.setup("fit")
    dm = _dm(synthetic_csv, test=[{"name": "csv", "root": str(tmp_path / "t.csv")}])
    with pytest.raises(DatasetError, match=r"data\.test\[0\]\.root"):
        dm.setup("test")
    with pytest.raises(ConfigError, match="labels must be unique"):
        _dm(synthetic_csv, test=[{"name": "csv", "root": "a"}, {"name": "csv", "root": "b"}])
    with pytest.raises(ConfigError, match=r"data\.val_fraction"):
        _dm(synthetic_csv, val_fraction=1.5)
    with pytest.raises(ConfigError, match=r"data\.train\.root is missing"):
        IQADataModule(train={"name": "csv"})


def test_image_cache_serves_identical_batches(synthetic_csv: Path, tmp_path: Path) -> None:
    plain = _dm(synthetic_csv, eval_crop_mode="center")
    cached = _dm(
        synthetic_csv, eval_crop_mode="center", image_cache=True, cache_dir=str(tmp_path / "c")
    )
    for dm in (plain, cached):
        dm.setup("fit")
    a, b = next(iter(plain.val_dataloader())), next(iter(cached.val_dataloader()))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["index"], b["index"])
    assert list((tmp_path / "c").glob("imgcache-*.json"))
    with pytest.raises(ConfigError, match=r"data\.cache_dir"):
        _dm(synthetic_csv, image_cache=True).val_dataloader()
