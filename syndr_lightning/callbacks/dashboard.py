"""Dashboards worth opening: per-test-set media, learning curves, run files and artifacts.

:class:`DashboardCallback` (``callbacks.dashboard``, on by default) writes into the run
folder and sends to the TensorBoard and W&B loggers (docs/metrics.md lists every key):

* after every ``trainer.test`` (the headline ``test/`` and the ``test_last/`` pass): per test
  set ``figures/scatter_<prefix>_<set>.png`` (prediction vs MOS, image
  ``<prefix>/<set>/scatter``) and ``predictions/<prefix>_<set>.csv`` (one row per image),
  also as the W&B table ``<prefix>/<set>/predictions`` up to ``table_max_rows`` rows;
* at the end of ``fit``: ``figures/learning_curves.png`` (image ``train/learning_curves``)
  from the per-epoch values it records (kept in checkpoints, so a resumed run draws them
  all);
* at the start of ``fit``: W&B's summary rules (``define_metric``: the best or last
  ``val/srcc`` per the selection rule, the test numbers);
* when the run is over (:func:`publish_run`, called by ``train()`` after ``metrics.json``):
  the run files (resolved config, run info, ``metrics.json``, ``syndr_protocol.json``,
  ``candidate_pool.txt``, the DRCDown history, the figures and predictions) as W&B run
  files; the upsampled set's ``manifest.csv``, ``candidate_pool.txt`` and ``meta.json`` as
  the artifact ``upsampled-<cache key>`` (type ``dataset``); the final numbers and the
  run's metadata (selection rule, protocol line, git commit) in the W&B summary and as
  TensorBoard text; opt-in (``checkpoints=true``; never in a sweep job unless
  ``checkpoints_in_sweeps=true``) the selected and last checkpoints as the artifact
  ``model-<run id>`` (aliases ``selected``, ``last``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from syndr_lightning import tracking
from syndr_lightning.metric_keys import lookup
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.io import atomic_open, git_sha

__all__ = ["DashboardCallback", "publish_run", "selection_of"]

#: Run-folder files published as W&B run files when they exist (relative to the run).
RUN_FILES: tuple[str, ...] = (
    "config_resolved.yaml",
    "run_info.json",
    "metrics.json",
    "syndr_protocol.json",
    "candidate_pool.txt",
    "drcdown_history.json",
    "drcdown_subsets.npz",
    "figures/figures.json",
)
#: Files of an upsampled set's cache folder that describe it (the images stay local).
UPSAMPLED_FILES: tuple[str, ...] = ("manifest.csv", "candidate_pool.txt", "meta.json")
#: Manifest columns copied into the per-image predictions.
_MANIFEST_COLUMNS = ("path", "ref", "dist_type", "level")


def selection_of(trainer: Trainer) -> str:
    """``val`` when a checkpoint monitors ``val/srcc`` (the selection rule kept it), else
    ``last`` (``RunConfig.from_config`` leaves those checkpoints out under ``last``)."""
    from syndr_lightning.metric_keys import VAL_MONITOR

    monitored = (getattr(cb, "monitor", None) for cb in trainer.checkpoint_callbacks)
    return "val" if VAL_MONITOR in monitored else "last"


class DashboardCallback(Callback):
    """Media, learning curves, summary rules and run records (see the module docstring)."""

    def __init__(
        self,
        out_dir: str | None = None,
        scatter: bool = True,
        table_max_rows: int = 5000,
        learning_curves: bool = True,
        run_files: bool = True,
        upsampled_set: bool = True,
        checkpoints: bool = False,
        checkpoints_in_sweeps: bool = False,
        sweep: bool = False,
    ) -> None:
        if int(table_max_rows) < 0:
            raise ConfigError(
                f"callbacks.dashboard.table_max_rows must be >= 0 (0: no tables); got "
                f"{table_max_rows}"
            )
        self.out_dir = out_dir
        self.scatter = bool(scatter)
        self.table_max_rows = int(table_max_rows)
        self.learning_curves = bool(learning_curves)
        self.run_files = bool(run_files)
        self.upsampled_set = bool(upsampled_set)
        self.checkpoints = bool(checkpoints) and (bool(checkpoints_in_sweeps) or not sweep)
        self.history: list[dict[str, float]] = []
        self.figures: dict[str, Path] = {}
        self.predictions: dict[str, Path] = {}
        self._outputs: dict[int, list[tuple[torch.Tensor, ...]]] = {}

    def _root(self, trainer: Trainer) -> Path:
        return Path(self.out_dir or trainer.default_root_dir)

    # ------------------------------------------------------------------ fit
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """W&B summary rules, before the first value is logged."""
        if trainer.is_global_zero:
            tracking.define_summary(trainer.loggers, selection_of(trainer))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Remember this epoch's numbers (validation has run) for the learning curves."""
        if trainer.sanity_checking:
            return
        epoch = int(trainer.current_epoch)
        row: dict[str, float] = {"epoch": float(epoch)}
        for key, value in trainer.callback_metrics.items():
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                row[key] = float(value)
        self.history = [h for h in self.history if int(h["epoch"]) != epoch] + [row]

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Draw and log the learning curves."""
        if not (self.learning_curves and trainer.is_global_zero and self.history):
            return
        from syndr_lightning.viz.figures import plot_learning_curves

        path = self._root(trainer) / "figures" / "learning_curves.png"
        try:
            png = plot_learning_curves(self.history, path)
        except InputError:  # nothing drawable was logged
            return
        self._log_figure(trainer, "train/learning_curves", png)

    # ----------------------------------------------------------------- test
    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start collecting this test pass's predictions."""
        self._outputs = {}

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Keep the batch's predictions, MOS and manifest rows (``test_step``'s outputs)."""
        if not self.scatter or not isinstance(outputs, Mapping) or "pred" not in outputs:
            return
        pred, mos, index = (
            outputs[k].detach().reshape(-1).cpu() for k in ("pred", "score", "index")
        )
        row = (pred.float(), mos.float(), index.long())
        self._outputs.setdefault(int(dataloader_idx), []).append(row)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Per test set: predictions CSV, scatter figure, W&B table."""
        if not self.scatter:
            return
        names = _test_names(trainer, pl_module)
        prefix = str(getattr(pl_module, "test_prefix", "test"))
        for idx, name in enumerate(names):
            parts = self._outputs.get(idx, [])
            empty = (torch.zeros(0), torch.zeros(0), torch.zeros(0, dtype=torch.long))
            pred, mos, index = (
                torch.cat([p[i] for p in parts]) if parts else empty[i] for i in range(3)
            )
            if trainer.world_size > 1:  # every rank takes part in the gather
                pred, mos, index = (_gather(pl_module, t) for t in (pred, mos, index))
            if trainer.is_global_zero and pred.numel() >= 2:
                self._test_set_media(trainer, prefix, name, pred, mos, index.long())
        self._outputs = {}

    def _test_set_media(
        self,
        trainer: Trainer,
        prefix: str,
        name: str,
        pred: torch.Tensor,
        mos: torch.Tensor,
        index: torch.Tensor,
    ) -> None:
        from syndr_lightning.viz.figures import plot_prediction_scatter

        frame = pd.DataFrame(
            {"index": index.numpy(), "mos": mos.numpy(), "prediction": pred.numpy()}
        )
        # DDP samplers pad with repeated rows: one row per image.
        frame = frame.drop_duplicates("index").sort_values("index").reset_index(drop=True)
        manifest = (getattr(trainer.datamodule, "test_manifests", None) or {}).get(name)
        if manifest is not None and len(manifest) > int(frame["index"].max()):
            rows = manifest.iloc[frame["index"].to_numpy()].reset_index(drop=True)
            for column in _MANIFEST_COLUMNS:
                if column in rows.columns:
                    frame.insert(len(frame.columns) - 2, column, rows[column].to_numpy())
        root = self._root(trainer)
        stem = f"{prefix}_{_safe(name)}"
        csv = root / "predictions" / f"{stem}.csv"
        with atomic_open(csv) as fh:
            frame.to_csv(fh, index=False)
        self.predictions[f"{prefix}/{name}"] = csv
        png = plot_prediction_scatter(
            frame["mos"].to_numpy(),
            frame["prediction"].to_numpy(),
            root / "figures" / f"scatter_{stem}.png",
            title=f"{name} ({prefix}): prediction vs MOS",
        )
        self._log_figure(trainer, f"{prefix}/{name}/scatter", png)
        if len(frame) <= self.table_max_rows:
            tracking.log_table(
                trainer.loggers,
                f"{prefix}/{name}/predictions",
                frame,
                step=int(trainer.global_step),
            )

    def _log_figure(self, trainer: Trainer, key: str, png: Path) -> None:
        from syndr_lightning.viz.logging import log_figures

        self.figures[key] = png
        log_figures(trainer.loggers, {key: png}, step=int(trainer.global_step))

    # --------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        """The per-epoch values so far (a resumed run draws every epoch)."""
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the per-epoch values of the epochs before the checkpoint."""
        self.history = [dict(h) for h in state_dict.get("history", [])]

    # ---------------------------------------------------------------- the end
    def publish(
        self,
        trainer: Trainer,
        metrics: Mapping[str, float],
        selection: str,
        protocol_line: str = "",
    ) -> dict[str, Any]:
        """Send the run's records to the loggers (global rank 0); returns what was sent."""
        sent: dict[str, Any] = {"files": [], "artifacts": []}
        if not trainer.is_global_zero:
            return sent
        loggers = trainer.loggers
        root = self._root(trainer)
        # metrics.json numbers that are no logged series (val_last/*, val/epoch, ...)
        tracking.set_summary(
            loggers,
            {k: v for k, v in metrics.items() if getattr(lookup(k), "kind", "") == "summary"},
        )
        tracking.set_metadata(
            loggers,
            {"run/selection": selection, "run/protocol": protocol_line, "run/git_sha": git_sha()},
            step=int(trainer.global_step),
        )
        config = root / "config_resolved.yaml"
        if config.is_file():
            for writer in tracking.tensorboard_writers(loggers):
                writer.add_text("run/config", f"```\n{config.read_text()}\n```", 0)
                writer.flush()
        if self.run_files:
            files = [root / f for f in RUN_FILES if (root / f).is_file()]
            files += sorted(p for p in (root / "figures").glob("*.png"))
            files += sorted(self.predictions.values())
            sent["files"] = tracking.save_files(loggers, files, root)
        if self.upsampled_set:
            sent["artifacts"] += self._publish_upsampled(trainer)
        if self.checkpoints:
            sent["artifacts"] += self._publish_checkpoints(trainer, metrics, selection)
        return sent

    def _publish_upsampled(self, trainer: Trainer) -> list[str]:
        from syndr_lightning.data.syndr import SynDRDataModule

        dm = trainer.datamodule
        if not isinstance(dm, SynDRDataModule) or dm.ddcup_build is None:
            return []
        upsampled = dm.ddcup_build.upsampled
        folder = Path(upsampled.directory)
        files = {name: folder / name for name in UPSAMPLED_FILES}
        meta = {"key": upsampled.key, "n_samples": len(upsampled.manifest)}
        return tracking.log_artifact(
            trainer.loggers, f"upsampled-{upsampled.key}", "dataset", files, metadata=meta
        )

    def _publish_checkpoints(
        self, trainer: Trainer, metrics: Mapping[str, float], selection: str
    ) -> list[str]:
        from syndr_lightning.metric_keys import VAL_MONITOR

        runs = tracking.wandb_runs(trainer.loggers)
        if not runs:
            return []
        last = ""
        selected = ""
        for cb in trainer.checkpoint_callbacks:
            if not isinstance(cb, ModelCheckpoint) or not cb.best_model_path:
                continue
            if cb.monitor is None:
                last = cb.best_model_path
            elif cb.monitor == VAL_MONITOR:
                selected = cb.best_model_path
        if selection == "last" or not selected:
            selected = ""
        logged: list[str] = []
        name = f"model-{runs[0].id}"
        versions = [(selected, ["selected", "best"])] if selected else []
        if last:
            versions.append((last, ["last", "latest"] + ([] if selected else ["selected"])))
        for path, aliases in versions:
            meta = {
                "file": Path(path).name,
                "selection": selection,
                "alias": aliases[0],
                **({"val/srcc": metrics["val/srcc"]} if "val/srcc" in metrics else {}),
                **({"val/epoch": metrics["val/epoch"]} if aliases[0] == "selected" else {}),
            }
            logged += tracking.log_artifact(
                trainer.loggers,
                name,
                "model",
                {"model.ckpt": Path(path)},
                aliases=aliases,
                metadata={k: v for k, v in meta.items() if v is not None},
            )
        return logged


def _safe(name: str) -> str:
    """A test set's name as a file-name part."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _test_names(trainer: Trainer, pl_module: LightningModule) -> list[str]:
    names = getattr(pl_module, "test_names", None)
    if callable(names):
        return list(names())
    return list(getattr(trainer.datamodule, "test_names", []) or [])


def _gather(pl_module: LightningModule, values: torch.Tensor) -> torch.Tensor:
    """Concatenate a 1-D tensor of different length on every rank (padded all-gather)."""
    device = pl_module.device
    count = torch.tensor([values.numel()], device=device)
    counts = pl_module.all_gather(count).reshape(-1)
    top = int(counts.max())
    padded = torch.zeros(top, dtype=values.dtype, device=device)
    padded[: values.numel()] = values.to(device)
    gathered = pl_module.all_gather(padded).reshape(-1, top)
    return torch.cat([gathered[r, : int(n)] for r, n in enumerate(counts)]).cpu()


def publish_run(
    trainer: L.Trainer, metrics: Mapping[str, float], selection: str, protocol_line: str = ""
) -> dict[str, Any]:
    """Publish the run's records through its :class:`DashboardCallback` (none configured:
    nothing is sent); call after ``metrics.json`` is written."""
    for cb in trainer.callbacks:
        if isinstance(cb, DashboardCallback):
            return cb.publish(trainer, metrics, selection, protocol_line)
    return {"files": [], "artifacts": []}
