"""The Hydra task function: build data, model, callbacks, loggers and trainer; fit; test.

``train(cfg)`` is what ``python -m syndr_lightning`` runs (config key ``task``). It builds
the run configuration first (``RunConfig.from_config``: every value checked before any
Trainer, logger or cache exists), writes ``config_resolved.yaml`` and ``run_info.json``
into the run folder (``provenance``), seeds everything, fits, evaluates the checkpoint
with the best ``val/srcc`` (``test/<dataset>/*``) and the last epoch
(``test_last/<dataset>/*``) (``evaluation``), reports both with the run's ``Protocol``
(built once, written as ``syndr_protocol.json``), writes ``metrics.json`` and returns the
metrics (``val/srcc`` is the sweep objective).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from syndr_lightning.build import (
    build_callbacks,
    build_datamodule,
    build_loggers,
    build_model,
    instantiate,
)
from syndr_lightning.callbacks.dashboard import publish_run
from syndr_lightning.callbacks.preemption import (
    AtomicCheckpointIO,
    PreemptionCheckpoint,
    forget_requeue,
    preemption_guard,
    requeued_checkpoint,
)
from syndr_lightning.callbacks.resume import ExactResume
from syndr_lightning.callbacks.test_selection import TestSetSelection
from syndr_lightning.compose import compose_config
from syndr_lightning.data.datamodule import IQADataModule
from syndr_lightning.data.paper_protocol import POOL_FILE, write_name_list
from syndr_lightning.evaluation import evaluate_after_fit
from syndr_lightning.protocol import Protocol
from syndr_lightning.provenance import plain_config, save_run_files, write_metrics
from syndr_lightning.reporting import print_report
from syndr_lightning.resume import (
    check_resume,
    continue_csv_curves,
    continue_run_folder,
    run_folder_of,
)
from syndr_lightning.run_config import RunConfig
from syndr_lightning.run_identity import run_identity
from syndr_lightning.run_status import write_run_status
from syndr_lightning.utils.cpus import set_torch_threads
from syndr_lightning.utils.images import set_max_image_pixels
from syndr_lightning.utils.io import atomic_open
from syndr_lightning.utils.progress import progress_bar_setting
from syndr_lightning.utils.signals import sigusr1_outside_slurm
from syndr_lightning.wandb_auth import finish_wandb

__all__ = ["RunConfig", "compose_config", "train"]

log = logging.getLogger(__name__)

# Rows of the results table: (metric prefix, how the checkpoint was chosen).
_ROWS_LAST = [("val_last", "last"), ("test_last", "last")]
_ROW_ON_TEST = ("test_best_on_test", "best epoch on TEST (optimistic)")


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test one model as configured; return every final metric as floats."""
    run = RunConfig.from_config(cfg)
    set_max_image_pixels(run.max_image_pixels)
    sigusr1_outside_slurm()  # SLURM's requeue signal: outside SLURM one warning, no death
    out_dir = Path(str(cfg.paths.output_dir)).expanduser()
    ckpt_path = cfg.get("ckpt_path") or requeued_checkpoint(run.log_dir)
    resumed_step = 0
    if ckpt_path:  # readable, and this run's (one line before any work); its folder continues
        resumed_step = int(check_resume(cfg, str(ckpt_path)).get("global_step", 0) or 0)
        folder = run_folder_of(ckpt_path)
        if folder is not None and folder != out_dir.resolve():
            out_dir = continue_run_folder(cfg, out_dir, folder)
            run = RunConfig.from_config(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_run_files(cfg, out_dir)
    L.seed_everything(run.seed, workers=True)
    set_torch_threads()  # the CPUs this process may use, not the machine's (utils/cpus.py)

    datamodule = build_datamodule(cfg, run)
    model = build_model(cfg, run)
    loggers = build_loggers(cfg)
    if ckpt_path:
        continue_csv_curves(loggers, resumed_step)
    callbacks = build_callbacks(run, loggers)
    preempt = next(c for c in callbacks if isinstance(c, PreemptionCheckpoint))
    for cb in callbacks:
        if isinstance(cb, ExactResume):
            cb.identity = run_identity(cfg)
    trainer: L.Trainer | None = None
    try:
        trainer = instantiate(
            cfg.trainer,
            "trainer",
            callbacks=callbacks,
            logger=loggers or False,
            plugins=[AtomicCheckpointIO()],
            **progress_bar_setting(cfg.trainer, callbacks),
        )
        for lg in trainer.loggers:  # loggers write on rank 0 only
            lg.log_hyperparams(plain_config(cfg))
        # Atomic checkpoints and preemption (callbacks/preemption.py, docs/failures.md).
        with preemption_guard(preempt, "the same command plus"):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
            protocol = _protocol(run, datamodule, trainer)
            metrics = evaluate_after_fit(cfg, trainer, model, datamodule)
        if trainer.is_global_zero:
            forget_requeue(run.log_dir)  # finished: a later run of this job starts afresh
        for cb in callbacks:
            if isinstance(cb, TestSetSelection):
                metrics.update(cb.metrics())
        write_metrics(metrics, out_dir, cfg, run.selection)
        if trainer.is_global_zero:
            write_run_status(out_dir, epoch=trainer.current_epoch, step=trainer.global_step)
            protocol_line = _report(metrics, run, datamodule, protocol)
            # Run files, artifacts, summary and metadata to the loggers (issue 23).
            publish_run(trainer, metrics, run.selection, protocol_line)
            from syndr_lightning.logs import show_run_folder

            show_run_folder(str(out_dir))
    except Exception as exc:  # where the run stopped, for run_status.json (__main__)
        if trainer is not None:
            exc.run_progress = (trainer.current_epoch, trainer.global_step)  # type: ignore[attr-defined]
        raise
    finally:
        finish_wandb(loggers)
    return metrics


def _protocol(run: RunConfig, datamodule: L.LightningDataModule, trainer: L.Trainer) -> Protocol:
    """The run's protocol, built once from the datamodule's typed facts; a SynDR run
    writes it as ``syndr_protocol.json`` (+ ``candidate_pool.txt``) on global rank 0."""
    assert isinstance(datamodule, IQADataModule)  # RunConfig.from_config checked data._target_
    facts = datamodule.facts()
    protocol = Protocol.from_facts(facts, run.reshape, run.seed, run.facts)
    if facts.syndr is None or not trainer.is_global_zero:
        return protocol
    out = Path(trainer.default_root_dir)
    info = protocol.to_json()
    with atomic_open(out / "syndr_protocol.json") as fh:
        json.dump(info, fh, indent=1, default=str)
    if facts.syndr.pool_names:
        write_name_list(out / POOL_FILE, facts.syndr.pool_names)
    log.info("SynDR protocol: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    return protocol


def _report(
    metrics: dict[str, float], run: RunConfig, datamodule: L.LightningDataModule, protocol: Protocol
) -> str:
    """Print val/test metrics per checkpoint rule, captioned with the run's protocol;
    return the protocol line."""
    best_epoch = metrics.get("val/epoch")
    chosen = f"best val/srcc (epoch {best_epoch:.0f})" if best_epoch is not None else "final"
    caption = "max val/srcc" if best_epoch is not None else "final weights (no checkpoint)"
    if run.selection == "last":
        chosen, caption = "last epoch", "last epoch (nothing held out; no model selection)"
    rows = [("val", chosen), _ROWS_LAST[0], ("test", chosen), _ROWS_LAST[1], _ROW_ON_TEST]
    assert isinstance(datamodule, IQADataModule)
    line = replace(protocol, selection=caption).line()
    print_report(metrics, list(datamodule.test_names), rows, line)
    return line
