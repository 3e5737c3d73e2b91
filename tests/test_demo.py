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
)
from syndr_lightning.utils.errors import ConfigError

EXPERIMENT = "demo"

TINY_DATA = [
    # Small photographs only (decoding retina/hubble costs seconds).
    "demo.data.photos=[astronaut,coffee,chelsea,rocket,camera,moon,coins,clock]",
    "demo.data.n_train_photos=3",
    "demo.data.n_val_photos=1",
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
    figures = results["figures"]
    expected = {
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
