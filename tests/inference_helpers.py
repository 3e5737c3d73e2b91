"""Helpers shared by the inference, export and viz tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch import nn

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


class AuthorsBaseline(nn.Module):
    """The reference code's ``Baseline`` layout (SynDR-IQA's released models):
    ``backbone`` = torchvision ResNet-50's children without ``fc`` as an ``nn.Sequential``,
    ``classify`` = ``Sequential(Linear(2048, 1))``."""

    def __init__(self) -> None:
        import torchvision

        super().__init__()
        model = torchvision.models.resnet50(weights=None)
        self.backbone = nn.Sequential(*list(model.children())[:-1])
        self.classify = nn.Sequential(nn.Linear(2048, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.backbone(x).reshape(x.size(0), -1))

    @classmethod
    def random(cls, seed: int) -> AuthorsBaseline:
        """Random weights and batch-norm statistics; scores near 5 (inside 0..10)."""
        torch.manual_seed(seed)
        model = cls()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
            model.classify[0].weight.normal_(0, 0.002)
            model.classify[0].bias.fill_(5.0)
        return model.eval()


def save_released(model: nn.Module, path: Path) -> Path:
    """Save ``model`` as the reference script does (``save_checkpoint``'s dict)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-5)
    torch.save(
        {
            "epoch": 11,
            "state_dict": model.state_dict(),
            "best_SRCC": np.float64(0.8312),  # scipy's numpy floats, as their script stores
            "best_PLCC": np.float64(0.8541),
            "optimizer": optimizer.state_dict(),
        },
        path,
    )
    return path
