"""A callback for the preemption tests: slow batches and a marker once training runs."""

from __future__ import annotations

import os
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
