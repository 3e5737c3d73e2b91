"""The Hydra task function: build data, model, callbacks, loggers and trainer; fit; test.

``train(cfg)`` is what ``python -m syndr_lightning`` runs (config key ``task``). It
validates the config (``config.validate_config``), writes ``config_resolved.yaml`` and
``run_info.json`` into the run folder (``provenance``), seeds everything, fits, evaluates
the checkpoint with the best ``val/srcc`` (``test/<dataset>/*``) and the last epoch
(``test_last/<dataset>/*``) (``evaluation``), prints both with the run's ``Protocol``,
writes ``metrics.json`` and returns the metrics (``val/srcc`` is the sweep objective).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig

from syndr_lightning.callbacks.dashboard import publish_run
from syndr_lightning.callbacks.preemption import (
    AtomicCheckpointIO,
    PreemptionCheckpoint,
    forget_requeue,
    preemption_guard,
    requeued_checkpoint,
)
from syndr_lightning.callbacks.test_selection import TestSetSelection
from syndr_lightning.compose import (
    build_datamodule,
    build_loggers,
    compose_config,
    finish_wandb,
    instantiate,
    instantiate_mapping,
    progress_bar_setting,
    safety_callbacks,
    validate_before_building,
    validate_config,
)
from syndr_lightning.config import REPO_ROOT, conf_dir, register_resolvers
from syndr_lightning.evaluation import apply_selection, evaluate, resolve_selection
from syndr_lightning.protocol import Protocol, run_facts
from syndr_lightning.provenance import plain_config, save_run_files, write_metrics
from syndr_lightning.reporting import print_report
from syndr_lightning.utils.runchecks import check_run

__all__ = [
    "REPO_ROOT",
    "TestSetSelection",
    "compose_config",
    "conf_dir",
    "register_resolvers",
    "resolve_selection",
    "train",
    "validate_config",
]

# Rows of the results table: (metric prefix, how the checkpoint was chosen).
_ROWS_LAST = [("val_last", "last"), ("test_last", "last")]
_ROW_ON_TEST = ("test_best_on_test", "best epoch on TEST (optimistic)")


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test one model as configured; return every final metric as floats."""
    validate_before_building(cfg)
    check_run(cfg)  # max_epochs=0, a cache folder that is a file (utils/runchecks.py)
    out_dir = Path(str(cfg.paths.output_dir)).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_run_files(cfg, out_dir)
    L.seed_everything(int(cfg.get("seed", 0)), workers=True)

    rule = apply_selection(cfg)
    datamodule = build_datamodule(cfg)
    if isinstance(getattr(datamodule, "protocol_extra", None), dict):
        datamodule.protocol_extra.update(run_facts(cfg, rule))  # type: ignore[union-attr]
    model = instantiate(cfg.model, "model")
    callbacks = instantiate_mapping(cfg.get("callbacks"), "callbacks")
    callbacks.extend(safety_callbacks(cfg))
    selection = TestSetSelection() if cfg.get("select_on_test", False) else None
    if selection is not None:
        callbacks.append(selection)
    # Atomic checkpoints and preemption (callbacks/preemption.py, docs/failures.md).
    log_dir = cfg.get("paths", {}).get("log_dir")
    preempt = PreemptionCheckpoint(out_dir / "checkpoints", str(log_dir) if log_dir else None)
    callbacks.append(preempt)
    ckpt_path = cfg.get("ckpt_path") or requeued_checkpoint(log_dir)
    loggers = build_loggers(cfg)
    if not loggers:
        # LearningRateMonitor refuses to run without a logger; nothing to record anyway.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    try:
        trainer: L.Trainer = instantiate(
            cfg.trainer,
            "trainer",
            callbacks=callbacks,
            logger=loggers or False,
            plugins=[AtomicCheckpointIO()],
            **progress_bar_setting(cfg, callbacks),
        )
        for lg in trainer.loggers:  # loggers write on rank 0 only
            lg.log_hyperparams(plain_config(cfg))
        with preemption_guard(preempt, "the same command plus"):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
            metrics = evaluate(cfg, trainer, model, datamodule)
        if trainer.is_global_zero:
            forget_requeue(log_dir)  # finished: a later run of this job starts afresh
        if selection is not None:
            metrics.update(selection.metrics())
        write_metrics(metrics, out_dir, cfg, rule)
        if trainer.is_global_zero:
            protocol_line = _report(metrics, cfg, datamodule, rule)
            # Run files, artifacts, summary and metadata to the loggers (issue 23).
            publish_run(trainer, metrics, rule, protocol_line)
            from syndr_lightning.logs import show_run_folder

            show_run_folder(str(out_dir))
    finally:
        finish_wandb(loggers)
    return metrics


def _report(
    metrics: dict[str, float], cfg: DictConfig, datamodule: L.LightningDataModule, rule: str
) -> str:
    """Print val/test metrics per checkpoint rule, captioned with the run's protocol;
    return the protocol line."""
    best_epoch = metrics.get("val/epoch")
    chosen = f"best val/srcc (epoch {best_epoch:.0f})" if best_epoch is not None else "final"
    caption = "max val/srcc" if best_epoch is not None else "final weights (no checkpoint)"
    if rule == "last":
        chosen, caption = "last epoch", "last epoch (nothing held out; no model selection)"
    rows = [("val", chosen), _ROWS_LAST[0], ("test", chosen), _ROWS_LAST[1], _ROW_ON_TEST]
    protocol = Protocol.from_datamodule(datamodule, int(cfg.get("seed", 0)), selection=caption)
    line = protocol.line()
    print_report(metrics, list(getattr(datamodule, "test_names", [])), rows, line)
    return line
