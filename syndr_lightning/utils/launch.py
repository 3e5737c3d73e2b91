"""Hydra multirun rules: the value a sweeper optimises, and one device per sweep job.

Free of Lightning; called by the entry point (``__main__.run_task``). See docs/scaling.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from syndr_lightning.utils.errors import ConfigError, InputError


def objective(metrics: Mapping[str, Any], name: str | None) -> float | None:
    """Return the value a Hydra sweeper optimises: ``metrics[name]`` as a float.

    ``name`` is the config key ``optimized_metric`` (``None`` or empty: no objective, the
    task returns ``None``). A missing or non-finite metric is an error, because Optuna would
    otherwise record a wrong trial silently.
    """
    if not name:
        return None
    if name not in metrics:
        found = ", ".join(sorted(metrics)) or "none"
        raise ConfigError(
            f"optimized_metric={name!r} is not among the metrics the run returned ({found}); "
            "set optimized_metric to one of them (e.g. val/srcc) or make sure validation runs."
        )
    value = float(metrics[name])
    if not math.isfinite(value):
        raise InputError(
            f"optimized_metric {name!r} is {value}; expected a finite number. The run "
            "probably diverged or validated on constant predictions: check its logs."
        )
    return value


def _device_count(devices: Any, accelerator: Any) -> int:
    """How many devices a Lightning ``devices`` value asks for on this machine."""
    if not isinstance(devices, str | int) and hasattr(devices, "__len__"):
        return len(devices)  # a list of device ids (also an omegaconf ListConfig)
    text = str(devices).strip().lower()
    if text in ("auto", "-1", "none", ""):
        if str(accelerator).lower() in ("cpu",):
            return 1
        try:
            import torch

            return max(1, torch.cuda.device_count())
        except ImportError:  # pragma: no cover - torch is a hard dependency
            return 1
    if "," in text:
        return len([t for t in text.split(",") if t.strip()])
    try:
        return max(1, int(text))
    except ValueError:
        return 1


def hydra_config() -> object | None:
    """The running Hydra job's config (``HydraConfig``), or None outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def is_multirun(mode: object | None = None) -> bool:
    """Whether Hydra runs a multirun: ``mode`` (a ``RunMode`` or its name), by default
    the mode of the running Hydra job (False outside Hydra). The one such test."""
    if mode is None:
        hc = hydra_config()
        mode = "" if hc is None else getattr(hc, "mode", "")
    return str(mode).upper().split(".")[-1] == "MULTIRUN"


def check_sweep_devices(
    trainer_cfg: Mapping[str, Any], mode: str, launcher_target: str = "", tasks_per_node: int = 1
) -> None:
    """Enforce our rule: a Hydra multirun runs ONE device per job (no DDP inside a sweep).

    ``mode`` is Hydra's run mode (``RUN`` / ``MULTIRUN``). Under the local launcher, a
    multi-device trainer would make Lightning re-launch the whole sweep in every child
    process; under the submitit (SLURM) launcher each SLURM task must be one rank, so
    ``tasks_per_node`` must equal the devices per node. Raises ``ConfigError`` otherwise.
    """
    if not is_multirun(mode):
        return
    n = _device_count(trainer_cfg.get("devices", 1), trainer_cfg.get("accelerator", "auto"))
    nodes = int(trainer_cfg.get("num_nodes", 1) or 1)
    strategy = trainer_cfg.get("strategy", "auto")
    target = strategy.get("_target_", "") if isinstance(strategy, Mapping) else str(strategy)
    if "submitit" in launcher_target.lower():
        if n > 1 and int(tasks_per_node) != n:
            raise ConfigError(
                f"trainer.devices={n} with hydra.launcher.tasks_per_node={tasks_per_node}: under "
                "SLURM every task is one rank, so set hydra.launcher.tasks_per_node and "
                f"gpus_per_node to {n} (or trainer.devices=1 for a sweep). See docs/scaling.md."
            )
        return
    if n > 1 or nodes > 1 or "ddp" in target.lower():
        raise ConfigError(
            f"a multirun (-m / hparams_search) runs one device per job, found trainer.devices={n}, "
            f"trainer.num_nodes={nodes}, strategy={target or strategy!r}: Lightning's DDP would "
            "re-launch the whole sweep in every rank. Use trainer=gpu (one device) for sweeps, "
            "or hydra/launcher=slurm with tasks_per_node = GPUs. See docs/scaling.md."
        )


def check_hydra_launch(cfg: Any) -> None:
    """:func:`check_sweep_devices` for the running Hydra job (no-op outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover - hydra is a hard dependency
        return
    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    launcher = hc.launcher
    check_sweep_devices(
        cfg.get("trainer", {}) or {},
        str(hc.mode),
        str(launcher.get("_target_", "")),
        int(launcher.get("tasks_per_node", 1) or 1),
    )
