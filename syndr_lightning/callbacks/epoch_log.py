"""One line per training epoch: above the progress bar in a terminal, a log line without
one (SLURM, nohup), and always in the run's log file (``<task>.log``)."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L

__all__ = ["EpochLog", "epoch_line", "show"]

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
    """``epoch 2/5: loss 0.81 | val srcc ... | DRCDown kept 306/375, 87 clusters | 1m23s``.

    Epochs are numbered as everywhere else (the progress bar, the results table, the
    checkpoint names, ``metrics.csv``): from 0, so "epoch 2/5" is the third of six.
    """
    last = f"/{max_epochs - 1}" if max_epochs > 0 else ""
    parts = [f"epoch {epoch}{last}: loss {_fmt(metrics.get('train/loss'))}"]
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
    """One line per training epoch (loss, validation metrics, DRCDown, elapsed time).

    ``when``: ``auto`` (the default; ``always`` is the same) prints it above the progress
    bar when a live bar holds the terminal, else as an INFO log line (console and log
    file); the run's log file gets it either way. ``never`` prints nothing.
    """

    def __init__(self, when: str = "auto") -> None:
        if when not in ("auto", "always", "never"):
            raise ValueError(
                f"callbacks.epoch_log.when must be auto, always or never; got {when!r}"
            )
        self.when = when
        self._start = time.monotonic()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.when == "never" or not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = {k: v for k, v in trainer.callback_metrics.items()}
        line = epoch_line(
            trainer.current_epoch,
            int(trainer.max_epochs or 0),
            metrics,
            time.monotonic() - self._start,
        )
        show(line, trainer)


def show(line: str, trainer: Any = None) -> None:
    """``line`` above ``trainer``'s live progress bar in a terminal (and into the log
    file), else as an INFO log line (the console handler and the log file)."""
    from syndr_lightning.logs import log_text
    from syndr_lightning.utils.progress import lightning_progress

    live = lightning_progress(trainer) if trainer is not None else None
    console = getattr(live, "console", None)
    if console is not None and console.is_terminal:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
        log_text(line)
    else:
        log.info(line)
