"""Run provenance: the resolved config, versions and command next to every run's outputs,
and the final ``metrics.json``."""

from __future__ import annotations

import json
import platform
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from syndr_lightning.reporting import save_job_metrics
from syndr_lightning.utils.io import atomic_open, git_sha


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    return container


def _versions() -> dict[str, str]:
    import hydra
    import lightning
    import timm
    import torchvision

    import syndr_lightning

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "hydra": hydra.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
        "syndr_lightning": syndr_lightning.__version__,
    }


@rank_zero_only
def save_run_files(cfg: DictConfig, out_dir: Path) -> None:
    """Write ``config_resolved.yaml`` and ``run_info.json`` into ``out_dir`` (atomically)."""
    plain = plain_config(cfg)
    with atomic_open(out_dir / "config_resolved.yaml", "w", encoding="utf-8") as fh:
        fh.write(OmegaConf.to_yaml(OmegaConf.create(plain)))
    overrides: list[str] = []
    if HydraConfig.initialized():
        overrides = list(HydraConfig.get().overrides.task)
    info = {
        "git_sha": git_sha(),
        "versions": _versions(),
        "seed": int(cfg.get("seed", 0)),
        "task": str(cfg.get("task", "syndr_lightning.train.train")),
        "command": [sys.executable, *sys.argv],
        "overrides": overrides,
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "output_dir": str(out_dir),
    }
    with atomic_open(out_dir / "run_info.json", "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")


@rank_zero_only
def metrics_identity(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """What a run's metrics belong to: task, training and test data, backbone, protocol
    (the ``syndr_protocol.json`` the run wrote, when a SynDR run) and seed."""

    def pick(key: str) -> Any:
        value = OmegaConf.select(cfg, key, default=None)
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value

    train = pick("data.train") or {}
    tests = pick("data.test") or []
    protocol: Any = None
    file = out_dir / "syndr_protocol.json"
    if file.is_file():
        try:
            protocol = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            protocol = None
    return {
        "task": str(cfg.get("task", "syndr_lightning.train.train")),
        "data": {
            "train": train.get("name") if isinstance(train, dict) else str(train),
            "options": train.get("options") if isinstance(train, dict) else None,
            "test": [t.get("name") if isinstance(t, dict) else str(t) for t in tests]
            if isinstance(tests, list)
            else str(tests),
        },
        "backbone": pick("model.backbone"),
        "protocol": protocol,
        "seed": int(cfg.get("seed", 0)),
    }


def write_metrics(
    metrics: Mapping[str, float], out_dir: Path, cfg: DictConfig, rule: str = "val"
) -> None:
    """``metrics.json`` of the run, with its git SHA, seed and selection rule, its identity
    (:func:`metrics_identity`) and the digest over both (``reporting.metrics_digest``)."""
    info = {
        "git_sha": git_sha(),
        "seed": int(cfg.get("seed", 0)),
        "status": "completed",
        "selection": rule,
    }
    save_job_metrics(metrics, out_dir, extra=info, identity=metrics_identity(cfg, out_dir))
