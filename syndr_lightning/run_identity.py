"""A run's identity: what a checkpoint must share with the run that resumes from it.

Every training checkpoint stores :func:`run_identity` of the run that wrote it
(``callbacks/resume.py``). ``ckpt_path=`` with a checkpoint whose identity differs from
the resuming run's in any part (the task, the training data, the backbone, the
protocol: reshaping parameters, label scaling, crops, batch size, seed...) is refused
before anything trains (:func:`check_checkpoint_identity`, a ConfigError naming the
differing keys), instead of training on with another run's weights and state.
Dataset folders (``root``) are not part of it: a run may be resumed where its data moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from syndr_lightning.utils.errors import ConfigError

__all__ = ["IDENTITY_KEY", "check_checkpoint_identity", "run_identity"]

#: The checkpoint key holding the identity.
IDENTITY_KEY = "syndr_run_identity"

#: The data keys that belong to the protocol (the rest: folders, workers, caches).
_DATA_KEYS = (
    "_target_",
    "val_fraction",
    "test_fraction",
    "crop_size",
    "batch_size",
    "hflip",
    "eval_crops",
    "eval_crop_mode",
    "protocol",
    "drcdown_on_upsampled",
    "reseed_every_epoch",
)
_MODEL_KEYS = ("backbone", "loss", "freeze_bn", "head_bias", "lr_schedule")


def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _entry(entry: Any) -> Any:
    """A dataset entry without its folder: name, options, label."""
    entry = _plain(entry)
    if not isinstance(entry, Mapping):
        return entry
    return {k: v for k, v in sorted(entry.items()) if k != "root"}


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """The identity of the run ``cfg`` describes, as plain values (flat dotted keys)."""
    data = cfg.get("data") or {}
    model = cfg.get("model") or {}
    out: dict[str, Any] = {
        "task": str(cfg.get("task") or ""),
        "seed": _plain(cfg.get("seed")),
        "data.train": _entry(data.get("train")),
        "data.test": [
            str(_plain(e).get("label") or _plain(e).get("name"))
            for e in (data.get("test") or [])
            if isinstance(_plain(e), Mapping)
        ],
    }
    for key in _DATA_KEYS:
        if key in data:
            out[f"data.{key}"] = _plain(data.get(key))
    for key in _MODEL_KEYS:
        if key in model:
            out[f"model.{key}"] = _plain(model.get(key))
    reshape = _plain(cfg.get("reshape")) or {}
    for key, value in sorted(reshape.items()):
        out[f"reshape.{key}"] = value
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_checkpoint_identity(stored: Any, current: Mapping[str, Any], ckpt_path: str) -> None:
    """Refuse (ConfigError) a checkpoint whose stored identity differs from ``current``.

    A checkpoint written before identities were stored (``stored`` None) is accepted.
    """
    if not isinstance(stored, Mapping):
        return
    differ = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
    if not differ:
        return
    first = differ[0]
    more = f" (and {len(differ) - 1} more: {', '.join(differ[1:4])})" if len(differ) > 1 else ""
    raise ConfigError(
        f"ckpt_path={ckpt_path} belongs to another run: {first} differs (checkpoint "
        f"{_short(stored.get(first))}, this run {_short(current.get(first))}){more}; resume "
        "with the command that wrote it, or start this run without ckpt_path"
    )
