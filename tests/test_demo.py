"""The demo: proxy dataset builder and the whole pipeline in a tiny configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from syndr_lightning.demo.data import (
    DemoSpec,
    available_photos,
    build_demo_dataset,
    proxy_mos,
    reference_crops,
    reference_tiles,
)
from syndr_lightning.utils.errors import ConfigError

EXPERIMENT = "demo"

TINY_DATA = [
    # Small photographs only (decoding retina/hubble costs seconds).
    "demo.data.photos=[astronaut,coffee,chelsea,rocket,camera,moon,coins,clock]",
    "demo.data.n_train_photos=3",
    "demo.data.n_val_photos=0",
    "demo.data.val_crops_per_photo=1",  # validation = held-out tiles of the training photos
    "demo.data.n_candidate_photos=3",
    "demo.data.n_test_photos=1",
    "demo.data.crops_per_photo=2",
    "demo.data.ref_size=[48,40]",
    "demo.data.train_types=[1,10,17]",
    "demo.data.test_types=[2,11]",
    "demo.data.levels=[1,3,5]",
]


def test_shipped_photographs_load_offline() -> None:
    photos, skipped = available_photos()
    # scikit-image alone ships more than the default demo needs (8+2+5+4 = 19).
    assert len(photos) >= 19, skipped
    for img in photos.values():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    with pytest.raises(ConfigError, match="unknown demo photographs"):
        available_photos(["astronaut", "no_such_photo"])


def test_reference_crops_and_proxy_label() -> None:
    photos, _ = available_photos(["astronaut"])
    crops = reference_crops(photos["astronaut"], 3, (64, 48))
    assert len(crops) == 3 and all(c.shape == (48, 64, 3) for c in crops)
    assert not np.array_equal(crops[0], crops[2])
    ref = crops[0]
    assert proxy_mos(ref, ref) == pytest.approx(5.0)
    rng = np.random.default_rng(0)
    mild = np.clip(ref + rng.normal(0, 5, ref.shape), 0, 255).astype(np.uint8)
    strong = np.clip(ref + rng.normal(0, 60, ref.shape), 0, 255).astype(np.uint8)
    assert 1.0 <= proxy_mos(ref, strong) < proxy_mos(ref, mild) < 5.0


def test_reference_tiles_do_not_overlap() -> None:
    photo = np.arange(300 * 400 * 3, dtype=np.int64).reshape(300, 400, 3) % 251
    photo = photo.astype(np.uint8)
    tiles = reference_tiles(photo, 4, (64, 48))
    assert len(tiles) == 4 and all(t.shape == (48, 64, 3) for t in tiles)
    # A 2x2 grid of a landscape photograph: the tiles are its four quarters, disjoint.
    full = np.asarray(Image.fromarray(photo).resize((128, 96), Image.Resampling.BICUBIC))
    assert np.array_equal(tiles[0], full[:48, :64]) and np.array_equal(tiles[3], full[48:, 64:])
    with pytest.raises(ConfigError, match="tiles"):
        reference_tiles(photo, 0, (64, 48))


def test_demo_spec_needs_validation_references() -> None:
    with pytest.raises(ConfigError, match="val_crops_per_photo"):
        DemoSpec(n_val_photos=0, val_crops_per_photo=0).validate()
    DemoSpec(n_val_photos=0, val_crops_per_photo=1).validate()


def test_build_demo_dataset_layout_and_cache(tmp_path: Path) -> None:
    from syndr_lightning.data.datasets import load_dataset

    spec = DemoSpec(
        n_train_photos=2,
        n_val_photos=1,
        n_candidate_photos=1,
        n_test_photos=1,
        crops_per_photo=2,
        ref_size=(40, 32),
        train_types=(1, 17),
        test_types=(11,),
        levels=(1, 5),
    )
    data = build_demo_dataset(tmp_path, spec)
    assert not data.reused
    train = load_dataset("kadid10k", str(data.kadid_root), refs=data.train_refs)
    val = load_dataset("kadid10k", str(data.kadid_root), refs=data.val_refs)
    target = load_dataset("kadid10k", str(data.target_root))
    assert len(train) == 4 * 2 * 2 and len(val) == 2 * 2 * 2 and len(target) == 2 * 1 * 2
    assert set(train["ref"]).isdisjoint(val["ref"])
    # Held-out tiles of the training photographs validate first (then the val photos).
    tiled = build_demo_dataset(tmp_path, DemoSpec(**{**spec.__dict__, "val_crops_per_photo": 1}))
    assert len(tiled.val_refs) == 2 + 2 and tiled.root != data.root
    crops = tiled.meta["source_crops"]
    train_photos = tiled.meta["roles"]["train"]
    assert [crops[f"I{i + 1:02d}"] for i in tiled.val_refs[:2]] == [f"{n}_2" for n in train_photos]
    assert set(target["dist_type"]) == {11}
    # Labels are the documented proxy: level 5 worse than level 1 for every ref and type.
    table = pd.read_csv(data.kadid_root / "dmos.csv")
    assert table["dmos"].between(1, 5).all()
    for (ref, t), group in train.groupby(["ref", "dist_type"]):
        by_level = group.set_index("level")["raw_score"]
        assert by_level[5] < by_level[1], (ref, t)
    with Image.open(data.kadid_root / "images" / "I01.png") as img:
        assert img.size == (40, 32)
    assert len(list(data.candidates_dir.glob("*.png"))) == 2
    # Photo roles never share content.
    roles = data.meta["roles"]
    names = [n for v in roles.values() for n in v]
    assert len(names) == len(set(names))
    again = build_demo_dataset(tmp_path, spec)
    assert again.reused and again.root == data.root
    with pytest.raises(ConfigError, match="photographs"):
        build_demo_dataset(tmp_path, DemoSpec(n_train_photos=40))


def test_demo_runs_end_to_end(tmp_path: Path, capsys) -> None:
    from syndr_lightning.demo.run import run_demo
    from syndr_lightning.train import compose_config

    cfg = compose_config(
        [
            f"+experiment={EXPERIMENT}",
            *TINY_DATA,
            "model.backbone=tiny_cnn",
            "model.weights=none",
            "model.lr=1e-3",
            "model.lr_ratio=1",
            "reshape.encoder=tiny_cnn",
            "reshape.encoder_weights=none",
            "reshape.encoder_crop=32",
            "data.crop_size=32",
            "data.eval_crops=1",
            "data.batch_size=16",
            "trainer.max_epochs=1",
            "demo.umap_epochs=20",
            "demo.seeds=[0,1]",
            "callbacks.umap.max_samples=40",
            f"paths.cache_dir={tmp_path / 'cache'}",
        ],
        output_dir=tmp_path / "run",
    )
    metrics = run_demo(cfg)
    out = capsys.readouterr().out
    assert "proxy task" in out.lower()
    assert "+experiment=syn2auth" in out
    assert "baseline" in out and "syndr" in out
    for variant in ("baseline", "syndr"):
        for seed in (0, 1):
            assert np.isfinite(metrics[f"{variant}/seed{seed}/test/target/srcc"])
    results = json.loads((tmp_path / "run" / "demo_results.json").read_text())
    # Paired seeds: the difference, its interval and a verdict line.
    cmp = results["comparison"]
    srcc = {(r["seed"], r["variant"]): r["srcc"] for r in results["rows"]}
    diffs = [srcc[(s, "syndr")] - srcc[(s, "baseline")] for s in (0, 1)]
    assert cmp["n"] == 2 and cmp["mean_diff"] == pytest.approx(np.mean(diffs))
    assert cmp["low"] <= cmp["mean_diff"] <= cmp["high"]
    assert f"Verdict: syndr vs baseline on this proxy task: {cmp['verdict']}" in out
    assert "Paired difference syndr - baseline" in out and "+-" in out
    rows = {r["variant"]: r for r in results["rows"] if r["seed"] == 0}
    assert rows["baseline"]["kept_fraction"] is None
    assert 0 < rows["syndr"]["kept_fraction"] <= 1
    summary = json.loads((tmp_path / "run" / "figures" / "demo_summary.json").read_text())
    assert summary["comparison"]["mean_diff"] == pytest.approx(cmp["mean_diff"])
    assert summary["comparison"]["width"] == pytest.approx(cmp["high"] - cmp["low"])
    assert len(summary["runs"]) == 4
    for run in summary["runs"]:
        assert run["epochs_trained"] == 1 and run["levelled_off_epoch"] == 0
        assert run["curves"][0]["val_srcc"] == pytest.approx(run["val_srcc_final"])
        assert np.isfinite(run["srcc"]) and np.isfinite(run["plcc"])
        assert (run["kept_fraction"] is None) == (run["variant"] == "baseline")
    assert "Learning curves: baseline" in out and "levelled off at epoch 0" in out
    assert "interval is" in out
    figures = results["figures"]
    expected = {
        "learning_curves",
        "baseline/umap/train",
        "syndr/umap/train",
        "syndr/umap/joint",
        "syndr/drcdown/clusters_start",
        "syndr/drcdown/clusters_final",
        "syndr/curves",
        "ddcup/reference_selection",
    }
    assert expected <= set(figures)
    for path in figures.values():
        assert Path(path).stat().st_size > 1000
        assert path in out
        with Image.open(path) as img:
            assert img.format == "PNG"


def test_paired_comparison_verdicts() -> None:
    from scipy import stats

    from syndr_lightning.demo.run import paired_comparison

    base = [0.30, 0.25, 0.40, 0.35]
    better = paired_comparison(base, [0.41, 0.33, 0.52, 0.44])
    assert better.verdict == "better" and better.low > 0
    d = np.array([0.11, 0.08, 0.12, 0.09])
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert better.low == pytest.approx(d.mean() - half) and better.high == pytest.approx(
        d.mean() + half
    )
    assert paired_comparison(base, [0.20, 0.18, 0.31, 0.22]).verdict == "worse"
    mixed = paired_comparison(base, [0.35, 0.20, 0.45, 0.30])
    assert mixed.verdict == "no significant difference" and mixed.low < 0 < mixed.high
    assert paired_comparison([0.3], [0.5]).verdict.startswith("no significant difference")
    with pytest.raises(ConfigError):
        paired_comparison([0.1, 0.2], [0.3])


def test_demo_falls_back_to_tiny_cnn_without_the_offline_wheel(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    from syndr_lightning.demo import run as demo_run
    from syndr_lightning.train import compose_config

    cfg = compose_config([f"+experiment={EXPERIMENT}"], output_dir=tmp_path)
    assert cfg.model.backbone == "efficientnet_lite0" and cfg.model.weights == "offline"
    real = importlib.util.find_spec

    def missing_wheel(name: str, *args, **kwargs):
        return None if name == demo_run._LITE_PACKAGE else real(name, *args, **kwargs)

    monkeypatch.setattr(demo_run.importlib.util, "find_spec", missing_wheel)
    note = demo_run._backbone_note(cfg)
    assert note.startswith("FALLBACK") and "efficientnet-lite0" in note.replace("_", "-")
    assert cfg.model.backbone == "tiny_cnn" and cfg.model.weights == "none"
    assert cfg.reshape.encoder == "tiny_cnn" and cfg.reshape.encoder_weights == "none"
    assert cfg.model.lr == pytest.approx(1e-3)
    assert cfg.model.freeze_bn is False  # a CNN from scratch must learn its norm statistics


def test_epoch_curves_plateau_and_figure(tmp_path: Path) -> None:
    from syndr_lightning.demo.curves import epoch_curves, levelled_off_epoch, plot_demo_curves

    # A Lightning CSV table: step rows (loss_step) and epoch rows, NaN elsewhere.
    nan = float("nan")
    table = pd.DataFrame(
        {
            # the last row: trainer.validate of the selected checkpoint after fit
            "epoch": [0, 0, 0, 1, 1, 2, 2, 3],
            "train/loss_step": [3.0, nan, nan, 2.0, nan, 1.0, nan, nan],
            "train/loss_epoch": [nan, 2.5, nan, nan, 1.5, nan, 1.2, nan],
            "val/srcc": [nan, nan, 0.5, nan, 0.79, nan, 0.80, 0.80],
            "val/plcc": [nan, nan, 0.4, nan, 0.7, nan, 0.75, 0.75],
            "drcdown/kept_fraction": [0.9, nan, nan, 0.8, nan, 0.85, nan, nan],
        }
    )
    curves = epoch_curves(table)
    assert list(curves.index) == [0, 1, 2]
    assert curves["val_srcc"].tolist() == [0.5, 0.79, 0.80]
    assert curves["train_loss"].tolist() == [2.5, 1.5, 1.2]
    assert curves["kept_fraction"].tolist() == [0.9, 0.8, 0.85]
    assert epoch_curves(table.drop(columns=["drcdown/kept_fraction"]))["kept_fraction"].isna().all()
    assert levelled_off_epoch(curves["val_srcc"], 0.01) == 1
    assert levelled_off_epoch(curves["val_srcc"], 0.0) == 2
    assert levelled_off_epoch([]) is None
    png = plot_demo_curves(
        {("baseline", 0): curves, ("syndr", 0): curves},
        tmp_path / "c.png",
        levelled={("syndr", 0): 1},
    )
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > 500
