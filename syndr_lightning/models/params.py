"""The ``model`` config group as one frozen, validated object.

:class:`ModelParams` holds the only Python defaults of the model (``conf/model/biqa.yaml``
writes the same values for the record) and the only range checks: ``RunConfig`` builds it
from ``model.*`` before anything is written to the run folder, and
:class:`~syndr_lightning.models.module.BIQAModule` reads its fields (a checkpoint stores
them as its hyper-parameters, so ``load_from_checkpoint`` builds the same object again).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from syndr_lightning.models.backbones import BACKBONES
from syndr_lightning.utils.errors import ConfigError

__all__ = ["HEAD_BIAS", "LOSSES", "LR_SCHEDULES", "ModelParams"]

LOSSES: tuple[str, ...] = ("l1", "mse", "smooth_l1")
LR_SCHEDULES: tuple[str, ...] = ("none", "cosine")
HEAD_BIAS: tuple[str, ...] = ("zero", "label_mean")


def _positive(value: Any, key: str, *, zero: bool = False) -> float:
    try:
        out = float(value)
        ok = not isinstance(value, bool) and math.isfinite(out) and (out >= 0 if zero else out > 0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        bound = ">= 0" if zero else "> 0"
        raise ConfigError(f"model.{key}={value!r} is out of range; allowed: a number {bound}")
    return out


@dataclass(frozen=True)
class ModelParams:
    """Backbone (``weights``: a name, ``none``, ``offline`` or a file), Adam at ``lr``
    (head ``lr * lr_ratio``) with ``weight_decay``, the ``loss``, the ``lr_schedule``,
    the ``head_bias`` start, ``freeze_bn``, ``max_loss`` (a training loss above it stops
    the run as diverged; None: non-finite losses only); ``init_weights`` records where a checkpoint's
    backbone weights first came from. Defaults: the paper's model."""

    backbone: str = "resnet50"
    weights: str | None = "IMAGENET1K_V1"
    lr: float = 2e-5
    lr_ratio: float = 10.0
    weight_decay: float = 5e-4
    loss: str = "l1"
    init_weights: str | None = None
    freeze_bn: bool = False
    lr_schedule: str = "none"
    head_bias: str = "zero"
    max_loss: float | None = 1000.0

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(
                f"model.backbone={self.backbone!r} is unknown; allowed values: "
                f"{', '.join(BACKBONES)}"
            )
        for key, allowed in (
            ("loss", LOSSES),
            ("lr_schedule", LR_SCHEDULES),
            ("head_bias", HEAD_BIAS),
        ):
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"model.{key}={getattr(self, key)!r} is unknown; allowed values: "
                    f"{', '.join(allowed)}"
                )
        object.__setattr__(self, "lr", _positive(self.lr, "lr"))
        object.__setattr__(self, "lr_ratio", _positive(self.lr_ratio, "lr_ratio"))
        object.__setattr__(
            self, "weight_decay", _positive(self.weight_decay, "weight_decay", zero=True)
        )
        if self.max_loss is not None:  # null: stop on non-finite losses only
            object.__setattr__(self, "max_loss", _positive(self.max_loss, "max_loss"))
        if not isinstance(self.freeze_bn, bool):
            raise ConfigError(f"model.freeze_bn={self.freeze_bn!r} must be true or false")

    @classmethod
    def from_config(cls, given: Mapping[str, Any] | ModelParams | None) -> ModelParams:
        """Build from the ``model`` mapping (``_target_`` ignored; unknown keys refused)."""
        if isinstance(given, ModelParams):
            return given
        values = {k: v for k, v in dict(given or {}).items() if k != "_target_"}
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ConfigError(f"model has unknown keys {unknown}; allowed: {', '.join(allowed)}")
        return cls(**values)
