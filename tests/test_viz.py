"""Figures: UMAP maps, reference selection, cluster sizes, curves; logging to TensorBoard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from syndr_lightning.utils.errors import InputError
from syndr_lightning.viz import (
    embed_umap,
    log_figures,
    plot_cluster_histogram,
    plot_feature_map,
    plot_reference_selection,
    plot_training_curves,
)
from syndr_lightning.viz.figures import is_categorical


def assert_png(path: Path) -> None:
    """A non-empty PNG that PIL decodes, with more than one colour."""
    assert path.is_file() and path.stat().st_size > 1000
    with Image.open(path) as img:
        assert img.format == "PNG"
        arr = np.asarray(img.convert("RGB"))
    assert arr.shape[0] > 50 and arr.shape[1] > 50
    assert len(np.unique(arr.reshape(-1, 3), axis=0)) > 5


def test_umap_embedding_is_seeded_and_separates_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    feats = np.concatenate([c + 0.1 * rng.normal(size=(20, 16)) for c in centres])
    a = embed_umap(feats, seed=1, n_neighbors=8, n_epochs=60, metric="euclidean")
    b = embed_umap(feats, seed=1, n_neighbors=8, n_epochs=60, metric="euclidean")
    assert a.shape == (60, 2)
    np.testing.assert_allclose(a, b)
    # Points of one cluster are closer to their own centroid than to the others'.
    cents = np.stack([a[i * 20 : (i + 1) * 20].mean(0) for i in range(3)])
    own = np.linalg.norm(a - np.repeat(cents, 20, axis=0), axis=1)
    others = np.min(
        [np.linalg.norm(a - cents[j], axis=1) + 1e9 * (np.arange(60) // 20 == j) for j in range(3)],
        axis=0,
    )
    assert (own < others).mean() > 0.95


def test_embed_umap_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="2-D"):
        embed_umap(np.zeros(10))
    with pytest.raises(InputError, match="at least 3"):
        embed_umap(np.zeros((2, 4)))
    bad = np.ones((5, 3))
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        embed_umap(bad)


def test_feature_map_and_selection_pngs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 2))
    out = plot_feature_map(
        emb,
        {
            "score": rng.uniform(0, 10, 40),
            "reference": [f"I{i % 5:02d}" for i in range(40)],
            "distortion type": pd.array(
                [(i % 6) + 1 if i % 9 else None for i in range(40)], "Int64"
            ),
        },
        tmp_path / "fig1.png",
    )
    assert_png(out)
    sel = plot_reference_selection(
        emb[:12],
        ["train"] * 6 + ["selected"] * 2 + ["rejected"] * 4,
        tmp_path / "fig9.png",
    )
    assert_png(sel)
    with pytest.raises(InputError, match="has 3 values"):
        plot_feature_map(emb, {"score": [1, 2, 3]}, tmp_path / "bad.png")
    with pytest.raises(InputError, match=r"\.png"):
        plot_feature_map(emb, {"score": emb[:, 0]}, tmp_path / "fig.jpg")
    assert not (tmp_path / "bad.png").exists()


def test_is_categorical() -> None:
    assert is_categorical(["a", "b"])
    assert is_categorical(pd.array([1, 2, 3], "Int64"))
    assert not is_categorical(np.linspace(0, 10, 50))
    assert not is_categorical(np.arange(100))


def test_cluster_histogram_and_curves(tmp_path: Path) -> None:
    before = [1] * 30 + [4, 25, 60]
    after = [1] * 30 + [4, 20, 30]
    assert_png(plot_cluster_histogram(before, after, tmp_path / "hist.png", t_u=20))
    with pytest.raises(InputError, match=">= 1"):
        plot_cluster_histogram([0, 2], [1], tmp_path / "h2.png")
    metrics = pd.DataFrame(
        {
            "epoch": [0, 0, 1, 1, 2, 2],
            "step": [0, 1, 2, 3, 4, 5],
            "drcdown/kept": [90, np.nan, 85, np.nan, 80, np.nan],
            "val/srcc": [np.nan, 0.4, np.nan, 0.5, np.nan, 0.6],
        }
    )
    csv = tmp_path / "metrics.csv"
    metrics.to_csv(csv, index=False)
    assert_png(plot_training_curves(csv, tmp_path / "curves.png"))
    with pytest.raises(InputError, match="neither"):
        plot_training_curves(metrics[["epoch", "step"]], tmp_path / "c2.png")
    with pytest.raises(InputError, match="does not exist"):
        plot_training_curves(tmp_path / "missing.csv", tmp_path / "c3.png")


def test_log_figures_to_tensorboard(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    png = plot_cluster_histogram([1, 2, 8], [1, 2, 4], tmp_path / "h.png")
    tb = TensorBoardLogger(str(tmp_path / "tb"), name="run")
    got = log_figures([tb, CSVLogger(str(tmp_path / "csv"))], {"drcdown/clusters": png}, step=3)
    assert got == ["TensorBoardLogger"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(tb.log_dir)
    events.Reload()
    assert "drcdown/clusters" in events.Tags()["images"]
    assert events.Images("drcdown/clusters")[0].step == 3


def test_log_figures_sends_paths_to_wandb_style_loggers(tmp_path: Path) -> None:
    png = plot_cluster_histogram([1, 3], [1, 2], tmp_path / "h.png")

    class WandbLogger:  # same name and log_image signature as Lightning's
        def __init__(self) -> None:
            self.calls: list[tuple[str, list[str], int]] = []

        def log_image(self, key: str, images: list[str], step: int) -> None:
            self.calls.append((key, images, step))

    wb = WandbLogger()
    assert log_figures([wb], {"a": png, "b": png}, step=7) == ["WandbLogger"]
    assert wb.calls == [("a", [str(png)], 7), ("b", [str(png)], 7)]
