"""``syndr umap`` and the end-of-training UMAPCallback (figures written and logged)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
from inference_helpers import CROP, make_checkpoint
from PIL import Image

from syndr_lightning.callbacks.umap import UMAPCallback
from syndr_lightning.cli import main as syndr_main
from syndr_lightning.data.syndr import SynDRDataModule
from syndr_lightning.models.module import BIQAModule
from syndr_lightning.reshape.params import FeaturePassParams, ReshapeParams
from syndr_lightning.utils.errors import ConfigError


def _png_ok(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    with Image.open(path) as img:
        assert img.format == "PNG"


def test_umap_cli_single_and_joint(
    synthetic_csv: Path, authentic_csv: Path, tmp_path: Path, capsys
) -> None:
    ckpt = make_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "figs"
    code = syndr_main(
        ["umap", "--ckpt", str(ckpt), "--data", "csv", str(synthetic_csv), "--data", "csv",
         str(authentic_csv), "--out", str(out), "--max-images", "30", "--n-epochs", "20",
         "--crop-size", str(CROP)]
    )  # fmt: skip
    assert code == 0
    printed, err = capsys.readouterr()
    # Progress of both long steps on stderr: 30 + 12 images, then 3 embeddings.
    assert "UMAP features (42 images)" in err and "42/42" in err
    assert "UMAP embeddings" in err and "3/3" in err
    for name in ("umap_csv.png", "umap_csv_1.png", "umap_joint.png"):
        _png_ok(out / name)
        assert str(out / name) in printed
    coords = pd.read_csv(out / "umap_embedding.csv")
    assert set(coords["map"]) == {"csv", "csv_1", "joint"}
    assert (coords["map"] == "csv").sum() == 30  # subsampled
    assert coords[["umap_x", "umap_y"]].notna().all().all()


def test_umap_cli_errors(tmp_path: Path, capsys) -> None:
    ckpt = make_checkpoint(tmp_path / "m.ckpt")
    code = syndr_main(
        [
            "umap",
            "--ckpt",
            str(ckpt),
            "--data",
            "nosuchset",
            str(tmp_path),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("syndr umap: error: unknown dataset") and "\n" not in err
    code = syndr_main(
        ["umap", "--ckpt", str(ckpt), "--data", "csv", str(tmp_path / "x.csv"), "--out",
         str(tmp_path), "--upsampled", str(tmp_path)]
    )  # fmt: skip
    assert code == 2
    assert "go together" in capsys.readouterr().err


def test_umap_callback_writes_and_logs_figures(synthetic_csv: Path, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    L.seed_everything(0)
    dm = SynDRDataModule(
        train={"name": "csv", "root": str(synthetic_csv)},
        test=[{"name": "csv", "root": str(synthetic_csv), "label": "again"}],
        reshape=ReshapeParams.from_config(
            {"ddcup": False, "drcdown": True, "T_f": 0.1, "T_q": 2.0, "T_u": 2}
        ),
        val_fraction=0.34,
        batch_size=16,
        crop_size=CROP,
        eval_crops=1,
        feature_pass=FeaturePassParams(crop_size=CROP, batch_size=32, cache=False),
    )
    callback = UMAPCallback(max_samples=25, n_epochs=20, clusters=True, curves=True)
    tb = TensorBoardLogger(str(tmp_path / "tb"), name="run")
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        reload_dataloaders_every_n_epochs=1,
        limit_train_batches=2,
        logger=[CSVLogger(str(tmp_path), name="csv"), tb],
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    from syndr_lightning.callbacks.drcdown import DRCDownCallback

    trainer.callbacks.append(DRCDownCallback())
    trainer.fit(BIQAModule(backbone="tiny_cnn", weights="none", lr=1e-3), datamodule=dm)
    figs = tmp_path / "figures"
    for name in (
        "umap_train.png",
        "umap_again.png",
        "umap_joint.png",
        "drcdown_clusters_start.png",
        "drcdown_clusters_final.png",
        "curves.png",
    ):
        _png_ok(figs / name)
    record = json.loads((figs / "figures.json").read_text())
    assert set(record["figures"]) == set(callback.figures) and len(callback.figures) == 6
    final = record["drcdown_final"]
    assert 0 < final["kept"] <= final["total"] == len(dm.original_manifest)
    assert record["drcdown_start"]["total"] == final["total"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(tb.log_dir)
    events.Reload()
    assert {"umap/train", "drcdown/clusters_final", "curves"} <= set(events.Tags()["images"])


def test_umap_callback_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="max_samples"):
        UMAPCallback(max_samples=2)
    with pytest.raises(ConfigError, match="crops"):
        UMAPCallback(crops=0)


def test_umap_cli_reference_selection_from_ddcup_build(tmp_path: Path, capsys) -> None:
    """Fig. 9 through the CLI, from a real (tiny) DDCUp build folder."""
    from syndr_lightning.data.datasets import get_loader, load_dataset
    from syndr_lightning.data.upsample import UpsampleSpec, build_upsampled_set
    from syndr_lightning.fakedata.fixtures import write_fixture
    from syndr_lightning.reshape.params import DDCUpParams

    root = write_fixture("kadid10k", tmp_path / "kadid", n_refs=4, types=[1, 3], size=(40, 32))
    cands = write_fixture("folder", tmp_path / "cands", n_images=5, size=(40, 32), seed=7)
    manifest = load_dataset("kadid10k", str(root))
    refs = get_loader("kadid10k")(str(root)).references()
    spec = UpsampleSpec(
        (1, 3), DDCUpParams(encoder="tiny_cnn", encoder_weights="none", encoder_crop=32)
    )
    built = build_upsampled_set(manifest, refs, cands, tmp_path / "cache", spec, progress=False)
    ckpt = make_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "figs"
    code = syndr_main(
        ["umap", "--ckpt", str(ckpt), "--data", "kadid10k", str(root), "--out", str(out),
         "--n-epochs", "20", "--crop-size", str(CROP), "--candidates", str(cands),
         "--upsampled", str(built.directory)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    _png_ok(out / "umap_kadid10k.png")
    _png_ok(out / "ddcup_reference_selection.png")
    assert "ddcup/reference_selection" in capsys.readouterr().out
    code = syndr_main(
        ["umap", "--ckpt", str(ckpt), "--data", "kadid10k", str(root), "--out", str(out),
         "--candidates", str(cands), "--upsampled", str(tmp_path)]
    )  # fmt: skip
    assert code == 1  # bad input (a usage mistake would be 2)
    assert "meta.json" in capsys.readouterr().err
