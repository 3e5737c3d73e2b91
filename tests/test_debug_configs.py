"""The debug configs (overfit, limit, profiler) and the early-stopping callbacks compose,
validate and build the Lightning objects they name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.profilers import SimpleProfiler
from omegaconf import OmegaConf

from syndr_lightning.build import build_callbacks, instantiate
from syndr_lightning.compose import compose_config
from syndr_lightning.run_config import RunConfig


def _cfg(tmp_path: Path, *overrides: str):
    GlobalHydra.instance().clear()
    paths = [f"paths.cache_dir={tmp_path / 'c'}", f"paths.log_dir={tmp_path / 'l'}"]
    cfg = compose_config([*overrides, *paths], output_dir=tmp_path / "out")
    OmegaConf.resolve(cfg)
    RunConfig.from_config(cfg)
    return cfg


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [("overfit", "overfit_batches", 2), ("limit", "limit_train_batches", 0.1),
     ("profiler", "limit_train_batches", 5)],
)  # fmt: skip
def test_debug_configs_build_their_trainer(tmp_path: Path, name: str, key: str, value) -> None:
    cfg = _cfg(tmp_path, f"debug={name}")
    assert cfg.task_name == "debug" and cfg.trainer[key] == value
    trainer = instantiate(cfg.trainer, "trainer", logger=False, enable_progress_bar=False)
    if name == "profiler":
        assert isinstance(trainer.profiler, SimpleProfiler)
    if name == "overfit":
        assert trainer.overfit_batches == 2 and cfg.reshape.drcdown is False


def test_early_stopping_callbacks(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "callbacks=early_stopping")
    callbacks = build_callbacks(RunConfig.from_config(cfg), loggers=[])  # the one builder
    stops = [c for c in callbacks if isinstance(c, EarlyStopping)]
    assert len(stops) == 1 and stops[0].monitor == "val/srcc" and stops[0].mode == "max"
    assert "model_checkpoint" in cfg.callbacks  # the defaults are kept
