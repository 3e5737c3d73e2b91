"""A small DnCNN (Zhang et al. 2017) for type 15, loaded from a user-supplied checkpoint.

KADID's generator denoised with MATLAB's pretrained grayscale DnCNN; those weights are not
ours to ship. Users who have DnCNN weights in PyTorch form (a state dict of this
architecture) pass the file; the depth and width are read from the state dict.
Architecture: conv+ReLU, (depth-2) x conv+BN+ReLU, conv; it predicts the noise (residual),
one channel at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from syndr_lightning.utils.errors import InputError


class DnCNN(nn.Module):
    """Residual denoiser: ``clean = noisy - body(noisy)``."""

    def __init__(self, depth: int = 17, features: int = 64, channels: int = 1) -> None:
        super().__init__()
        if depth < 2:
            raise InputError(f"DnCNN depth must be >= 2, got {depth}")
        layers: list[nn.Module] = [
            nn.Conv2d(channels, features, 3, padding=1),
            nn.ReLU(inplace=True),
        ]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(features, features, 3, padding=1, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``[B,C,H,W]``."""
        return x - self.body(x)


def dncnn_from_state_dict(state: dict[str, torch.Tensor]) -> DnCNN:
    """Build a :class:`DnCNN` whose depth and width match ``state`` and load it."""
    convs = sorted(
        (int(k.split(".")[1]), v)
        for k, v in state.items()
        if k.startswith("body.") and k.endswith(".weight") and v.dim() == 4
    )
    if not convs:
        raise InputError(
            "checkpoint has no DnCNN conv weights (keys 'body.<i>.weight'); expected a DnCNN state dict"
        )
    features, channels = convs[0][1].shape[0], convs[0][1].shape[1]
    model = DnCNN(depth=len(convs), features=features, channels=channels)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"checkpoint does not match the DnCNN architecture: {exc}") from exc
    return model.eval()


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> DnCNN:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise InputError(f"cannot read DnCNN checkpoint {path}: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(
            f"DnCNN checkpoint {path} holds {type(obj).__name__}, expected a state dict"
        )
    return dncnn_from_state_dict(obj)


def load_dncnn_denoiser(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """Return a callable ``H x W x 3 float -> H x W x 3 float`` denoising each channel.

    Runs on the CPU (inside the generator's workers): a full-size DnCNN (17 layers, 64
    channels) costs seconds per 512x384 image per core.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"DnCNN checkpoint not found: {p}; pass an existing .pt state dict or omit it"
        )
    model = _load(str(p.resolve()), p.stat().st_mtime)

    def run(noisy: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1))).float().unsqueeze(1)
        with torch.inference_mode():
            y = (
                model(x)
                if model.body[0].in_channels == 1
                else model(x.transpose(0, 1)).transpose(0, 1)
            )
        return y.squeeze(1).permute(1, 2, 0).double().numpy()

    return run
