"""Evaluation after fitting: the validation-selected checkpoint and the last epoch.

``evaluate`` returns ``val/*`` (the checkpoint with the best ``val/srcc``), ``val_last/*``
(the last epoch), ``test/<dataset>/*`` and ``test_last/<dataset>/*`` as floats. Test sets
never select anything here (``callbacks/test_selection.py`` is the opt-in exception).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from syndr_lightning.data import VAL_FRACTION
from syndr_lightning.metric_keys import VAL_MONITOR
from syndr_lightning.reporting import plain_metrics
from syndr_lightning.utils.errors import ConfigError

SELECTIONS = ("val", "last", "auto")


def has_validation(cfg: DictConfig) -> bool:
    """Whether the config holds a validation set out (``data.val`` or ``data.val_fraction``)."""
    data = cfg.data
    return data.get("val") is not None or float(data.get("val_fraction", VAL_FRACTION) or 0) > 0


def resolve_selection(cfg: DictConfig) -> str:
    """The selection rule of the headline ``test/*`` numbers: ``val`` or ``last``.

    ``selection: val`` (default) tests the checkpoint with the best ``val/srcc``;
    ``last`` the last epoch; ``auto`` (the paper experiments) ``val`` when a validation
    set exists (``data.val_fraction > 0`` or ``data.val``), else ``last``. Best-on-test
    is never a selection rule: ``select_on_test=true`` adds it, labelled.
    """
    rule = str(cfg.get("selection", "val") or "val")
    if rule not in SELECTIONS:
        raise ConfigError(f"selection={rule!r} is unknown; allowed values: {', '.join(SELECTIONS)}")
    if rule == "auto":
        return "val" if has_validation(cfg) else "last"
    return rule


def _epoch_of(path: str) -> str:
    match = re.search(r"epoch_(\d+)", Path(path).name)
    return str(int(match.group(1))) if match else "?"


def _val_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor == VAL_MONITOR:
            return cb
    return None


def _last_checkpoint_path(trainer: L.Trainer) -> str:
    """Path of the checkpoint of the latest epoch (the unmonitored ModelCheckpoint's)."""
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor is None and cb.best_model_path:
            return cb.best_model_path
    val = _val_checkpoint(trainer)
    return val.last_model_path if val is not None else ""


def evaluate_after_fit(
    cfg: DictConfig, trainer: L.Trainer, model: Any, datamodule: Any
) -> dict[str, float]:
    """Validation/test metrics of the val-selected checkpoint and of the last epoch."""
    last = plain_metrics(trainer.callback_metrics)
    metrics: dict[str, float] = {}
    for key, value in last.items():
        if key.startswith("val/"):
            metrics["val_last/" + key[4:]] = value
        elif key.startswith("train/"):
            metrics[key] = value
    ckpt = _val_checkpoint(trainer)
    best_path = ckpt.best_model_path if ckpt is not None else ""
    last_path = _last_checkpoint_path(trainer)
    if best_path and Path(best_path).is_file():
        for result in trainer.validate(
            model, datamodule=datamodule, ckpt_path=best_path, verbose=False
        ):
            metrics.update({k: v for k, v in plain_metrics(result).items() if k.startswith("val/")})
        epoch = _epoch_of(best_path)
        if epoch != "?":
            metrics["val/epoch"] = float(epoch)
    else:
        # No checkpoint (fast_dev_run or checkpointing off): the final weights are selected.
        metrics.update({k: v for k, v in last.items() if k.startswith("val/")})
    names = list(getattr(datamodule, "test_names", []) or [])
    if not cfg.get("test", True) or not names:
        return metrics
    model.test_prefix = "test"
    if best_path and Path(best_path).is_file():
        metrics.update(_run_test(trainer, model, datamodule, best_path))
        if last_path and Path(last_path).is_file():
            model.test_prefix = "test_last"
            metrics.update(_run_test(trainer, model, datamodule, last_path))
            model.test_prefix = "test"
    else:
        metrics.update(_run_test(trainer, model, datamodule, None))
    return metrics


def _run_test(
    trainer: L.Trainer, model: Any, datamodule: Any, ckpt: str | None
) -> dict[str, float]:
    out: dict[str, float] = {}
    for result in trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False):
        out.update(plain_metrics(result))
    return out
