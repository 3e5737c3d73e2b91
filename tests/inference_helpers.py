"""Helpers shared by the inference, export and viz tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image

from syndr_lightning.models.module import BIQAModule

CROP = 32


def make_checkpoint(path: Path, seed: int = 0) -> Path:
    """A tiny_cnn checkpoint whose head gives image-dependent scores around 5."""
    torch.manual_seed(seed)
    model = BIQAModule(backbone="tiny_cnn", weights="none")
    with torch.no_grad():
        model.head.weight.mul_(3.0)
        model.head.bias.fill_(5.0)
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def write_image(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    """A random RGB image (w, h) saved in the format implied by the suffix."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path
