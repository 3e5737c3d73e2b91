"""A callback for the preemption tests: slow batches and a marker once training runs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback


class SlowBatches(Callback):
    """Sleep after each training batch; touch ``marker`` after the first one."""

    def __init__(self, marker: str, seconds: float = 0.3) -> None:
        self.marker = Path(marker)
        self.seconds = float(os.environ.get("SYNDR_TEST_SLOW_S", seconds))

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        """Let the test see that training is under way, then give it time to signal."""
        self.marker.touch()
        time.sleep(self.seconds)


class StopAt(Callback):
    """Send SIGTERM to this process at one exact point of training (deterministic
    interruption points for the exact-resume tests).

    ``where``: ``train_batch`` (after training batch ``batch`` of ``epoch``),
    ``val_batch`` (after validation batch ``batch`` of ``epoch``), ``epoch_start``
    (at the start of ``epoch``, after DRCDown's pass for it). Only the first run of a
    command stops: the signal is sent once per ``marker`` file.
    """

    def __init__(self, where: str, epoch: int, marker: str, batch: int = 0) -> None:
        self.where, self.epoch, self.batch = where, int(epoch), int(batch)
        self.marker = Path(marker)

    def _stop(self, trainer: Any, where: str, batch: int = 0) -> None:
        if self.marker.exists() or trainer.sanity_checking:
            return
        if where == self.where and trainer.current_epoch == self.epoch and batch == self.batch:
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_end(self, trainer: Any, _m: Any, _o: Any, _b: Any, batch_idx: int) -> None:
        """``train_batch``."""
        self._stop(trainer, "train_batch", batch_idx)

    def on_validation_batch_end(
        self, trainer: Any, _m: Any, _o: Any, _b: Any, batch_idx: int, _dl: int = 0
    ) -> None:
        """``val_batch``."""
        self._stop(trainer, "val_batch", batch_idx)

    def on_train_epoch_start(self, trainer: Any, _m: Any) -> None:
        """``epoch_start``."""
        self._stop(trainer, "epoch_start")
