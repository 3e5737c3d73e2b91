"""Composed configs: compose ``conf/``, validate a composed config, build objects from it.

``compose_config`` composes ``conf/`` (``config.conf_dir``) as the CLI does (tests, notebooks);
``validate_config`` checks a config before anything is built (each bad value names its
key); ``instantiate``/``build_*`` turn config groups into objects, letting our own
errors through unwrapped.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_class
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from syndr_lightning.config import conf_dir, register_resolvers
from syndr_lightning.evaluation import has_validation, resolve_selection
from syndr_lightning.models.backbones import BACKBONES
from syndr_lightning.reshape.params import FeaturePassParams, ReshapeParams
from syndr_lightning.utils.errors import ConfigError, DatasetError, SyndrError

__all__ = [
    "build_datamodule",
    "build_loggers",
    "compose_config",
    "instantiate",
    "instantiate_mapping",
    "safety_callbacks",
    "validate_before_building",
    "validate_config",
]


register_resolvers()  # ${syndr_root:} and the run-name resolvers, before any compose


# ------------------------------------------------------------------ config plumbing
def compose_config(
    overrides: Sequence[str] = (),
    output_dir: str | os.PathLike[str] | None = None,
    config_name: str = "train",
) -> DictConfig:
    """Compose ``conf/`` as the CLI would (for tests and notebooks).

    ``output_dir`` plays the role of Hydra's run folder (``${hydra:runtime.output_dir}``).
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir()), job_name="syndr"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(Path(output_dir).resolve())
    HydraConfig.instance().set_config(cfg)
    # Like the config @hydra.main hands to a task: no `hydra` node (``${hydra:...}``
    # resolves through the HydraConfig singleton set above).
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


# ----------------------------------------------------------------------- validation
def _validate_reshape(cfg: DictConfig) -> None:
    """Build the reshape parameter objects once, so a bad value fails before any work."""
    if cfg.get("reshape") is not None:
        ReshapeParams.from_config(OmegaConf.to_container(cfg.reshape, resolve=True))
    feature_pass = OmegaConf.select(cfg, "data.feature_pass")
    if feature_pass is not None:
        FeaturePassParams.from_config(OmegaConf.to_container(feature_pass, resolve=True))


def _dataset_entries(data: DictConfig) -> Iterable[tuple[str, Any]]:
    if data.get("train") is not None:
        yield "data.train", data.train
    if data.get("val") is not None:
        yield "data.val", data.val
    for i, entry in enumerate(data.get("test") or []):
        yield f"data.test[{i}]", entry


def validate_config(cfg: DictConfig) -> None:
    """Check the config before anything is built; raise ConfigError/DatasetError naming the key."""
    for group in ("data", "model", "trainer"):
        if cfg.get(group) is None:
            raise ConfigError(f"config group {group!r} is missing; add `{group}: <choice>`")
    backbone = OmegaConf.select(cfg, "model.backbone")
    if backbone is not None and backbone not in BACKBONES:
        raise ConfigError(
            f"model.backbone={backbone!r} is unknown; allowed values: {', '.join(BACKBONES)}"
        )
    _validate_reshape(cfg)
    check_reshape_is_used(cfg)
    for key, entry in _dataset_entries(cfg.data):
        name, root = entry.get("name"), entry.get("root")
        if not name or not root:
            raise ConfigError(f"{key} needs `name` (a dataset loader) and `root` (its path)")
        if name != "synthetic" and not Path(str(root)).expanduser().exists():
            raise DatasetError(
                f"{key}.root={str(root)!r} does not exist; download dataset {name!r} there, "
                f"or set {key}.root (or paths.data_dir / $SYNDR_DATA_DIR) to its folder"
            )
    if cfg.trainer.get("sync_batchnorm") and cfg.trainer.get("accelerator") == "cpu":
        raise ConfigError(
            "trainer.sync_batchnorm=true works on GPUs only; with trainer.accelerator=cpu set "
            "trainer.sync_batchnorm=false"
        )
    has_val = has_validation(cfg)
    monitors = [
        str(c.get("monitor"))
        for c in (cfg.get("callbacks") or {}).values()
        if isinstance(c, Mapping | DictConfig) and c.get("monitor")
    ]
    if (
        resolve_selection(cfg) == "val"
        and not has_val
        and any(m.startswith("val/") for m in monitors)
    ):
        raise ConfigError(
            "data.val_fraction=0 and no data.val: there is no validation set for model "
            "selection; set data.val_fraction (e.g. 0.2) or data.val, or drop the checkpoint "
            "monitor (callbacks.model_checkpoint.monitor=null)"
        )
    try:
        seed = int(cfg.get("seed", 0))
    except (TypeError, ValueError):
        raise ConfigError(f"seed must be an integer, got {cfg.get('seed')!r}") from None
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")


def validate_before_building(cfg: DictConfig) -> None:
    """:func:`validate_config` plus the pixel limit, before anything is built.

    A config mistake is a ConfigError (exit 2); a dataset root that is not there is a
    DatasetError (missing data: exit 1, as in every ``syndr`` command).
    """
    validate_config(cfg)
    from syndr_lightning.utils.images import set_max_image_pixels

    set_max_image_pixels(cfg.get("max_image_pixels"))


# ------------------------------------------------------------------ object building
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


def _datamodule_class(cfg: DictConfig) -> type:
    target = cfg.data.get("_target_")
    if not target:
        raise ConfigError(
            "data._target_ is missing; e.g. syndr_lightning.data.datamodule.IQADataModule"
        )
    try:
        return get_class(str(target))
    except Exception as exc:  # hydra raises plain ImportError/ValueError variants
        raise ConfigError(f"data._target_={target!r} cannot be imported: {exc}") from None


def check_reshape_is_used(cfg: DictConfig) -> None:
    """A reshaping switch that is on must reach a data module that can reshape.

    Otherwise the run would be the baseline while its saved config says DDCUp/DRCDown.
    """
    r = cfg.get("reshape")
    on = [k for k in ("ddcup", "drcdown") if r is not None and r.get(k) is True]
    if not on or cfg.data.get("reshape") is not None:
        return
    cls = _datamodule_class(cfg)
    if "reshape" not in inspect.signature(cls.__init__).parameters:
        keys = " and ".join(f"reshape.{k}=true" for k in on)
        raise ConfigError(
            f"{keys} but data._target_={cfg.data._target_} cannot reshape (it ignores "
            f"reshape.*); train the baseline with reshape=none, or use a data config with "
            f"syndr_lightning.data.syndr.SynDRDataModule (data=synthetic, data=syn2auth)"
        )


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """Instantiate ``cfg.data``; pass ``reshape=cfg.reshape`` when the target accepts it."""
    cls = _datamodule_class(cfg)
    kwargs: dict[str, Any] = {}
    params = inspect.signature(cls.__init__).parameters
    if "reshape" in params and "reshape" not in cfg.data and cfg.get("reshape") is not None:
        kwargs["reshape"] = OmegaConf.to_container(cfg.reshape, resolve=True)
    return instantiate(cfg.data, "data", _convert_="all", **kwargs)


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


_WANDB_NOTE_SHOWN = False


def wandb_logged_in(env: Mapping[str, str] | None = None) -> bool:
    """True when wandb has credentials: ``WANDB_API_KEY`` or a netrc entry for its host.

    The same places ``wandb login`` writes to and wandb reads from: the netrc file
    (``$NETRC``, else ``~/.netrc``) under the host of ``$WANDB_BASE_URL``
    (default ``https://api.wandb.ai``).
    """
    import netrc
    from urllib.parse import urlparse

    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    path = Path(env["NETRC"]) if env.get("NETRC") else Path.home() / ".netrc"
    try:
        auth = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def resolve_wandb_mode(entry: DictConfig, env: Mapping[str, str] | None = None) -> str | None:
    """Leave W&B's mode to wandb (login, ``WANDB_MODE``, settings, ``offline``), except that
    a run without any login is logged offline; returns the note saying so, else None."""
    env = os.environ if env is None else env
    if entry.get("offline") or env.get("WANDB_MODE") or wandb_logged_in(env):
        return None
    with open_dict(entry):
        entry.offline = True
    return (
        "W&B: not logged in (no WANDB_API_KEY, no netrc entry from `wandb login`): logging "
        "offline; upload later with `wandb sync <run>/wandb/offline-run-*`"
    )


def build_loggers(cfg: DictConfig) -> list[Any]:
    """Instantiate ``cfg.logger``; W&B follows wandb's own login/mode, offline without login."""
    global _WANDB_NOTE_SHOWN
    node = cfg.get("logger")
    for entry in (node or {}).values() if isinstance(node, DictConfig) else ():
        if isinstance(entry, DictConfig) and str(entry.get("_target_", "")).endswith("WandbLogger"):
            note = resolve_wandb_mode(entry)
            if note and not _WANDB_NOTE_SHOWN:
                _WANDB_NOTE_SHOWN = True
                print(note, file=sys.stderr)
    return instantiate_mapping(node, "logger")


def progress_bar_setting(cfg: DictConfig, callbacks: Sequence[Any]) -> dict[str, Any]:
    """No progress bar callback configured (``callbacks.rich_progress_bar=null``) means no
    bar, not Lightning's default TQDM bar; ``trainer.enable_progress_bar`` still wins."""
    from lightning.pytorch.callbacks import ProgressBar

    if "enable_progress_bar" in cfg.trainer or any(isinstance(c, ProgressBar) for c in callbacks):
        return {}
    return {"enable_progress_bar": False}


def finish_wandb(loggers: Sequence[Any]) -> None:
    if not any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        return
    import wandb

    if wandb.run is not None:
        wandb.finish()


def safety_callbacks(cfg: DictConfig) -> list[Any]:
    """Checks that run before fitting (``check_images``: every image decodes)."""
    if not cfg.get("check_images", True):
        return []
    from syndr_lightning.data.check_images import ImageCheck

    return [ImageCheck(cfg.get("paths", {}).get("cache_dir"))]
