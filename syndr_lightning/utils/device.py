"""The one place a user's ``device`` argument becomes a ``torch.device``."""

from __future__ import annotations

import torch

from syndr_lightning.utils.errors import InputError, SyndrError


def resolve_device(
    device: str | torch.device | None, error: type[SyndrError] = InputError
) -> torch.device:
    """``None`` or ``"auto"`` -> CUDA when available, else CPU; anything else must name a
    usable device.

    A malformed name, or CUDA asked for where there is none, raises ``error`` with what
    was expected.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise error(
            f"device: expected a torch device such as 'cpu', 'cuda' or 'cuda:0', found {device!r}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise error(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    return dev
