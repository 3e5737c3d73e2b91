"""One log line per training epoch, for runs without a terminal (SLURM, nohup)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import lightning as L

__all__ = ["EpochLog", "epoch_line"]

log = logging.getLogger("syndr_lightning")


def _fmt(value: Any) -> str:
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return "-"


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def epoch_line(epoch: int, max_epochs: int, metrics: dict[str, Any], seconds: float) -> str:
    """``epoch 3/6: loss 0.81 | val srcc ... | DRCDown kept 306/375, 87 clusters | 1m23s``."""
    parts = [f"epoch {epoch + 1}/{max_epochs}: loss {_fmt(metrics.get('train/loss'))}"]
    if "val/srcc" in metrics:
        parts.append(f"val srcc {_fmt(metrics['val/srcc'])} plcc {_fmt(metrics.get('val/plcc'))}")
    if "drcdown/kept" in metrics:
        total = metrics.get("drcdown/total")
        kept = int(float(metrics["drcdown/kept"]))
        of = f"/{int(float(total))}" if total is not None else ""
        clusters = metrics.get("drcdown/clusters")
        cl = f", {int(float(clusters))} clusters" if clusters is not None else ""
        parts.append(f"DRCDown kept {kept}{of}{cl}")
    parts.append(_elapsed(seconds))
    return " | ".join(parts)


class EpochLog(L.Callback):
    """One INFO line per training epoch (loss, validation metrics, DRCDown, elapsed time).

    ``when``: ``auto`` (only without a terminal on stderr, where no progress bar shows),
    ``always`` or ``never``.
    """

    def __init__(self, when: str = "auto") -> None:
        if when not in ("auto", "always", "never"):
            raise ValueError(
                f"callbacks.epoch_log.when must be auto, always or never; got {when!r}"
            )
        self.when = when
        self._start = time.monotonic()

    def _active(self) -> bool:
        if self.when == "auto":
            return not sys.stderr.isatty()
        return self.when == "always"

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active() or not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = {k: v for k, v in trainer.callback_metrics.items()}
        line = epoch_line(
            trainer.current_epoch,
            int(trainer.max_epochs or 0),
            metrics,
            time.monotonic() - self._start,
        )
        log.info(line)
