"""Objects from a composed config and its :class:`~syndr_lightning.run_config.RunConfig`:
the datamodule, the loggers, the callbacks (one builder) and ``instantiate`` letting our
own errors through unwrapped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from syndr_lightning.data.paper_protocol import DATA_KEYS
from syndr_lightning.run_config import RunConfig
from syndr_lightning.utils.errors import ConfigError, SyndrError
from syndr_lightning.wandb_auth import wandb_note

__all__ = [
    "build_callbacks",
    "build_datamodule",
    "build_loggers",
    "build_model",
    "instantiate",
    "instantiate_mapping",
]


def instantiate(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets our own errors through unwrapped."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, SyndrError):
            cause = cause.__cause__
        if isinstance(cause, SyndrError):
            raise cause from None
        raise ConfigError(f"cannot build {key}: {exc}") from exc


def build_datamodule(cfg: DictConfig, run: RunConfig) -> L.LightningDataModule:
    """Instantiate ``cfg.data`` with the run's validated objects passed whole
    (``reshape``, ``protocol``, ``feature_pass``) where the target accepts them."""
    import inspect

    cls = run.data_class
    params = inspect.signature(cls.__init__).parameters
    kwargs = OmegaConf.to_container(cfg.data, resolve=True)
    assert isinstance(kwargs, dict)
    kwargs.pop("_target_", None)
    for key in (*DATA_KEYS, "feature_pass"):
        kwargs.pop(key, None)
    if "reshape" in params and run.reshape is not None:
        kwargs["reshape"] = run.reshape
    if "protocol" in params and run.data_protocol is not None:
        kwargs["protocol"] = run.data_protocol
    if run.feature_pass is not None:
        kwargs["feature_pass"] = run.feature_pass
    _cap_loader_workers(kwargs)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"cannot build data ({cls.__name__}): {exc}") from None


def build_model(cfg: DictConfig, run: RunConfig) -> L.LightningModule:
    """The LightningModule ``model._target_`` names, built from ``run.model`` (the only
    route of ``model.*``: checked once, in :class:`ModelParams`)."""
    return run.model_class(run.model)


def _cap_loader_workers(kwargs: dict[str, Any]) -> None:
    """Loader workers at most the CPUs this process may use, less one (utils/cpus.py)."""
    from dataclasses import replace

    from syndr_lightning.utils.cpus import cap_workers, usable_cpus

    cpus = usable_cpus()
    if isinstance(kwargs.get("num_workers"), int):
        kwargs["num_workers"] = cap_workers(kwargs["num_workers"], "data.num_workers", cpus)
    feature_pass = kwargs.get("feature_pass")
    if feature_pass is not None and hasattr(feature_pass, "num_workers"):
        workers = cap_workers(feature_pass.num_workers, "data.feature_pass.num_workers", cpus)
        kwargs["feature_pass"] = replace(feature_pass, num_workers=workers)


def build_callbacks(run: RunConfig, loggers: Sequence[Any]) -> list[Any]:
    """Every callback of the run (``RunConfig.callbacks``), built; without a logger the
    ``LearningRateMonitor`` is left out (it refuses to run, and has nothing to record)."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    built = [instantiate(node, key) for key, node in run.callbacks]
    return built if loggers else [c for c in built if not isinstance(c, LearningRateMonitor)]


def instantiate_mapping(node: Any, key: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of a mapping (``null`` entries are skipped)."""
    if node is None:
        return []
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{key} must be a mapping of named entries with _target_, got {node!r}")
    out = []
    for name, entry in node.items():
        if entry is None:
            continue
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            raise ConfigError(f"{key}.{name} must be a mapping with a _target_, got {entry!r}")
        out.append(instantiate(entry, f"{key}.{name}"))
    return out


def build_loggers(cfg: DictConfig) -> list[Any]:
    """Instantiate ``cfg.logger``; W&B follows wandb's own login/mode, offline without login."""
    node = cfg.get("logger")
    wandb_note(node)
    loggers = instantiate_mapping(node, "logger")
    for lg in loggers:
        # Lightning passes anonymous=None to wandb.init, which then warns that the
        # (deprecated) setting "has no effect" on every run; an unset one says nothing.
        init = getattr(lg, "_wandb_init", None)
        if isinstance(init, dict) and init.get("anonymous", False) is None:
            del init["anonymous"]
    return loggers
