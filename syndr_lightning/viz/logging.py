"""Send written PNG figures to the experiment loggers that can show images."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["log_figures"]


def log_figures(
    loggers: Iterable[Any], figures: Mapping[str, str | os.PathLike[str]], step: int = 0
) -> list[str]:
    """Log each ``tag -> PNG path`` to every TensorBoard and W&B logger in ``loggers``.

    Other loggers (CSV, ...) are skipped: the PNG files on disk are the record. Returns
    the names of the loggers that received the figures.
    """
    received: list[str] = []
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "TensorBoardLogger":
            writer = logger.experiment
            for tag, path in figures.items():
                with Image.open(Path(path)) as img:
                    pixels = np.asarray(img.convert("RGB"))
                writer.add_image(tag, pixels, global_step=step, dataformats="HWC")
            writer.flush()
            received.append(kind)
        elif kind == "WandbLogger":
            for tag, path in figures.items():
                logger.log_image(key=tag, images=[str(path)], step=step)
            received.append(kind)
    return received
