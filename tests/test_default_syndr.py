"""The default offline run is SynDR-IQA (DDCUp + DRCDown) on generated data, and a
reshaping switch that no data module would act on is an error, not a silent baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hydra.core.global_hydra import GlobalHydra

from syndr_lightning.data.datasets import get_loader
from syndr_lightning.train import RunConfig, compose_config, train
from syndr_lightning.utils.errors import ConfigError

TINY = [
    "model=tiny",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "data.batch_size=8",
    "data.crop_size=32",
    "data.eval_crops=1",
    "data.train.options.n_refs=6",
    "data.train.options.n_types=2",
    "data.train.options.size=[40,48]",
    "data.test=null",
    "data.candidates.options.n=12",
    "data.candidates.options.size=[40,48]",
    "reshape.encoder_crop=64",
    "reshape.select_candidates=false",  # every candidate: the upsampled set is never empty
    "reshape.T_u=2",
    "callbacks.rich_progress_bar=null",
    "logger=csv",
]


def _paths(tmp: Path) -> list[str]:
    return [f"paths.cache_dir={tmp / 'cache'}", f"paths.log_dir={tmp / 'logs'}"]


def test_default_config_is_syndr_on_generated_data() -> None:
    cfg = compose_config([])
    assert cfg.data._target_ == "syndr_lightning.data.syndr.SynDRDataModule"
    assert cfg.reshape.ddcup is True and cfg.reshape.drcdown is True
    assert cfg.data.train.name == "synthetic" and cfg.data.candidates.name == "synthetic"
    # Offline: DDCUp's encoder has packaged weights (the paper's ResNet-50 would download).
    assert (cfg.reshape.encoder, cfg.reshape.encoder_weights) == ("efficientnet_lite0", "offline")
    assert "drcdown" in cfg.callbacks
    GlobalHydra.instance().clear()


def test_reshape_on_a_data_module_that_cannot_reshape_is_an_error(tmp_path: Path) -> None:
    # both switches on: tests/test_entrypoint.py (data=kadid10k); one of them here
    cfg = compose_config(
        ["data=kadid10k", f"data.train.root={tmp_path}", "reshape.drcdown=false"],
        output_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match=r"reshape\.d\w+=true.*IQADataModule.*reshape=none"):
        RunConfig.from_config(cfg)
    # The baseline on the same data is valid.
    ok = compose_config(["data=kadid10k", f"data.train.root={tmp_path}", "reshape=none"], tmp_path)
    RunConfig.from_config(ok)
    GlobalHydra.instance().clear()


def test_generated_references_for_ddcup(tmp_path: Path) -> None:
    loader = get_loader("synthetic")
    train_set = loader(
        tmp_path / "t",
        n_refs=2,
        n_types=2,
        n_levels=2,
        size=(24, 24),
        kadid_types=True,
        progress=False,
    )
    table = train_set.load()
    assert set(table["dist_type"]) == {1, 11}  # KADID numbers: Gaussian blur, white noise
    refs = train_set.references()
    assert sorted(refs) == ["ref_000", "ref_001"] and all(p.is_file() for p in refs.values())
    pool = loader(tmp_path / "c", kind="references", n=3, size=(24, 24)).references()
    assert len(pool) == 3 and all(p.is_file() for p in pool.values())
    with pytest.raises(ConfigError, match=r"data\.candidates"):
        loader(tmp_path / "c", kind="references", n=3).load()


def test_default_run_reshapes(tmp_path: Path) -> None:
    """A tiny default run really adds DDCUp samples and thins with DRCDown every epoch."""
    out = tmp_path / "run"
    metrics = train(compose_config([*TINY, *_paths(tmp_path)], output_dir=out))
    assert "val/srcc" in metrics
    protocol = json.loads((out / "syndr_protocol.json").read_text())
    assert protocol["ddcup"] and protocol["drcdown"] and protocol["n_upsampled"] > 0
    history = json.loads((out / "drcdown_history.json").read_text())
    epochs = history["epochs"] if isinstance(history, dict) else history
    assert len(epochs) == 2
    curves = pd.read_csv(out / "csv" / "metrics.csv")
    assert "drcdown/kept" in curves.columns
    GlobalHydra.instance().clear()
