"""The Hydra task function: build data, model, callbacks, loggers and trainer; fit; test.

``train(cfg)`` is what ``python -m syndr_lightning`` runs (config key ``task``). It
validates the config, writes ``config_resolved.yaml`` and ``run_info.json`` into the run
folder, seeds everything, fits, then tests the checkpoint with the best ``val/srcc``
(``test/<dataset>/*``) and the last epoch (``test_last/<dataset>/*``), prints both in a
table with the protocol, writes ``metrics.json`` and returns the metrics (``val/srcc``
is the sweep objective).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import platform
import random
import re
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from syndr_lightning.config import REPO_ROOT, conf_dir, register_resolvers
from syndr_lightning.metrics import METRIC_NAMES, iqa_metrics
from syndr_lightning.models.backbones import BACKBONES, weights_name
from syndr_lightning.reshape import BACKENDS, RULES, WEIGHTS
from syndr_lightning.utils.errors import ConfigError, DatasetError, SyndrError
from syndr_lightning.utils.io import atomic_open, git_sha

__all__ = [
    "REPO_ROOT",
    "TestSetSelection",
    "compose_config",
    "conf_dir",
    "register_resolvers",
    "resolve_selection",
    "train",
    "validate_config",
]

VAL_MONITOR = "val/srcc"


# ------------------------------------------------------------------ config plumbing
register_resolvers()


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


def _instantiate(node: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets our own errors through unwrapped."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, SyndrError):
            cause = cause.__cause__
        if isinstance(cause, SyndrError):
            raise cause from None
        raise ConfigError(f"cannot build {key}: {exc}") from exc


# ----------------------------------------------------------------------- validation
def _number(cfg: DictConfig, key: str) -> float:
    value = OmegaConf.select(cfg, key)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{key} must be finite, got {value!r}")
    return out


def _validate_reshape(cfg: DictConfig) -> None:
    r = cfg.get("reshape")
    if r is None:
        return
    if "T_f" in r and not 0.0 < _number(cfg, "reshape.T_f") <= 2.0:
        raise ConfigError(
            f"reshape.T_f={r.T_f} is out of range; allowed: 0 < T_f <= 2 (a cosine distance; "
            f"paper default 0.1)"
        )
    if "T_q" in r and not _number(cfg, "reshape.T_q") > 0.0:
        raise ConfigError(
            f"reshape.T_q={r.T_q} is out of range; allowed: T_q > 0 (a label gap on the 0..10 "
            f"scale; paper default 1.0)"
        )
    if "T_u" in r and (_number(cfg, "reshape.T_u") < 1 or float(r.T_u) != int(float(r.T_u))):
        raise ConfigError(
            f"reshape.T_u={r.T_u} is out of range; allowed: an integer >= 1 (paper default 20)"
        )
    if "T_ref" in r and not _number(cfg, "reshape.T_ref") >= 0.0:
        raise ConfigError(
            f"reshape.T_ref={r.T_ref} is out of range; allowed: T_ref >= 0 (paper default 0.05)"
        )
    if "k" in r and str(r.k) != "all":
        try:
            k_ok = int(r.k) >= 1 and float(r.k) == int(r.k)
        except (TypeError, ValueError):
            k_ok = False
        if not k_ok:
            raise ConfigError(
                f"reshape.k={r.k!r} is out of range; allowed: an integer >= 1 or 'all' (paper "
                f"default 5)"
            )
    choices = {"weights": WEIGHTS, "rule": RULES, "backend": BACKENDS}
    for key, allowed in choices.items():
        if key in r and r[key] not in allowed:
            raise ConfigError(
                f"reshape.{key}={r[key]!r} is unknown; allowed values: {', '.join(allowed)}"
            )
    if "temperature" in r and not _number(cfg, "reshape.temperature") > 0:
        raise ConfigError(f"reshape.temperature={r.temperature} must be > 0")
    for key in ("ddcup", "drcdown"):
        if key in r and not isinstance(r[key], bool):
            raise ConfigError(f"reshape.{key}={r[key]!r} must be true or false")


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
    has_val = _has_validation(cfg)
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


# ------------------------------------------------------------------ model selection
SELECTIONS = ("val", "last", "auto")


def _has_validation(cfg: DictConfig) -> bool:
    data = cfg.data
    return data.get("val") is not None or float(data.get("val_fraction", 0.2) or 0) > 0


def resolve_selection(cfg: DictConfig) -> str:
    """The selection rule of the headline ``test/*`` numbers: ``val`` or ``last``.

    ``selection: val`` (default) tests the checkpoint with the best ``val/srcc``;
    ``last`` the last epoch; ``auto`` (the paper experiments) ``val`` when a validation
    set exists (``data.val_fraction > 0`` or ``data.val``), else ``last``. Best-on-test
    is never a selection rule: ``select_on_test=true`` adds it, labelled.
    """
    rule = str(cfg.get("selection", "val") or "val")
    if rule not in SELECTIONS:
        raise ConfigError(f"selection={rule!r} is unknown; allowed values: {', '.join(SELECTIONS)}")
    if rule == "auto":
        return "val" if _has_validation(cfg) else "last"
    return rule


def apply_selection(cfg: DictConfig) -> str:
    """Resolve the selection rule; with ``last`` drop the ``val/*``-monitored checkpoints."""
    rule = resolve_selection(cfg)
    if rule == "last" and cfg.get("callbacks") is not None:
        with open_dict(cfg):
            for name, entry in list(cfg.callbacks.items()):
                if isinstance(entry, DictConfig) and str(entry.get("monitor") or "").startswith(
                    "val/"
                ):
                    cfg.callbacks[name] = None
    return rule


def _run_protocol(cfg: DictConfig, rule: str) -> dict[str, Any]:
    """Facts of the run the datamodule cannot know: weights loaded, selection rule."""
    model = cfg.get("model") or {}
    reshape = cfg.get("reshape") or {}
    chosen = rule + (" + best-on-test (labelled)" if cfg.get("select_on_test", False) else "")
    return {
        "backbone": model.get("backbone"),
        "backbone_weights": weights_name(str(model.get("backbone")), model.get("weights")),
        "encoder": reshape.get("encoder"),
        "encoder_weights": weights_name(
            str(reshape.get("encoder")), reshape.get("encoder_weights")
        ),
        "selection": chosen,
    }


def _validate_before_building(cfg: DictConfig) -> None:
    """:func:`validate_config` plus the pixel limit, before anything is built.

    Whatever it finds is a config error (exit 2), a missing dataset root included: the
    config names a folder that is not there.
    """
    try:
        validate_config(cfg)
        from syndr_lightning.utils.images import set_max_image_pixels

        set_max_image_pixels(cfg.get("max_image_pixels"))
    except DatasetError as exc:
        raise ConfigError(str(exc)) from None


def _safety_callbacks(cfg: DictConfig) -> list[Callback]:
    """Checks that run before fitting (``check_images``: every image decodes)."""
    if not cfg.get("check_images", True):
        return []
    from syndr_lightning.data.check_images import ImageCheck

    return [ImageCheck(cfg.get("paths", {}).get("cache_dir"))]


# ------------------------------------------------------------------ run provenance
def _plain_config(cfg: DictConfig) -> dict[str, Any]:
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
    plain = _plain_config(cfg)
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


# ------------------------------------------------------------------ object building
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
    return _instantiate(cfg.data, "data", _convert_="all", **kwargs)


def _instantiate_mapping(node: Any, key: str) -> list[Any]:
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
        out.append(_instantiate(entry, f"{key}.{name}"))
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
    return _instantiate_mapping(node, "logger")


def _progress_bar_setting(cfg: DictConfig, callbacks: Sequence[Any]) -> dict[str, Any]:
    """No progress bar callback configured (``callbacks.rich_progress_bar=null``) means no
    bar, not Lightning's default TQDM bar; ``trainer.enable_progress_bar`` still wins."""
    from lightning.pytorch.callbacks import ProgressBar

    if "enable_progress_bar" in cfg.trainer or any(isinstance(c, ProgressBar) for c in callbacks):
        return {}
    return {"enable_progress_bar": False}


def _finish_wandb(loggers: Sequence[Any]) -> None:
    if not any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        return
    import wandb

    if wandb.run is not None:
        wandb.finish()


# --------------------------------------------------------- test-set selection (opt-in)
class TestSetSelection(Callback):
    """Evaluates every test set after each epoch (after its validation, when there is one)
    and remembers the best epoch per set.

    This is the reference code's protocol (best epoch on the test set), which is optimistic;
    it runs only with ``select_on_test=true`` and its metrics are named
    ``test_best_on_test/<dataset>/*``.
    """

    def __init__(self) -> None:
        self.best: dict[str, dict[str, float]] = {}
        self._scored: int | None = None

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Score each test set with the current weights; keep the best SRCC per set."""
        dm = trainer.datamodule
        if trainer.sanity_checking or dm is None or not getattr(dm, "test_names", None):
            return
        self._scored = int(trainer.current_epoch)
        self._score_epoch(trainer, pl_module, dm)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Without a validation set no validation epoch ends: score the test sets here."""
        dm = trainer.datamodule
        if dm is None or not getattr(dm, "test_names", None):
            return
        if self._scored == int(trainer.current_epoch):
            return
        self._scored = int(trainer.current_epoch)
        modes = {m: m.training for m in pl_module.modules()}
        pl_module.eval()
        try:
            self._score_epoch(trainer, pl_module, dm)
        finally:
            for module, training in modes.items():
                module.training = training

    @torch.no_grad()
    def _score_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, dm: Any) -> None:
        if not getattr(dm, "test_manifests", None):
            dm.setup("test")
        # Iterating loaders draws from the global RNGs; restore them so that opting in to
        # this report does not change the training run itself.
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            self._evaluate(trainer, pl_module, dm)
        random.setstate(py_state)
        np.random.set_state(np_state)

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, dm: Any) -> None:
        for name, loader in zip(dm.test_names, dm.test_dataloader(), strict=True):
            preds, targets = [], []
            for batch in loader:
                images = batch["image"].to(pl_module.device)
                preds.append(pl_module.predict_crops(images).float().cpu())  # type: ignore[operator]
                targets.append(batch["score"].float())
            values = iqa_metrics(torch.cat(preds).numpy(), torch.cat(targets).numpy())
            values["epoch"] = float(trainer.current_epoch)
            if name not in self.best or values["srcc"] > self.best[name]["srcc"]:
                self.best[name] = values

    def metrics(self) -> dict[str, float]:
        """``test_best_on_test/<dataset>/<metric>`` (and ``/epoch``) of the best epochs."""
        return {
            f"test_best_on_test/{name}/{key}": value
            for name, values in self.best.items()
            for key, value in values.items()
        }


# ------------------------------------------------------------------------ reporting
def _to_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            out[str(key)] = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError):
            continue
    return out


def _epoch_of(path: str) -> str:
    match = re.search(r"epoch_(\d+)", Path(path).name)
    return str(int(match.group(1))) if match else "?"


def _protocol(cfg: DictConfig, dm: Any, selection: str) -> str:
    d = cfg.data
    crops = (
        f"{d.get('eval_crops', 5)} {d.get('eval_crop_mode', 'random')} crops of "
        f"{d.get('crop_size', 224)} px"
    )
    center = [
        e.get("label", e.get("name"))
        for e in getattr(dm, "test_entries", [])
        if e.get("crop_mode") == "center"
    ]
    if center:
        crops += f" (one centre crop for {', '.join(map(str, center))})"
    n_val = len(dm.val_manifest) if getattr(dm, "val_manifest", None) is not None else 0
    resized = [
        f"{e.get('label', e.get('name'))} shorter side {e['resize']}"
        for e in getattr(dm, "test_entries", [])
        if e.get("resize")
    ]
    if resized:
        crops += f" (resized first: {', '.join(resized)})"
    text = (
        f"selection: {selection}; validation: {n_val} held-out images; eval: {crops}; "
        f"seed {cfg.get('seed', 0)}"
    )
    protocol = getattr(dm, "protocol", None)
    if callable(protocol):  # SynDRDataModule: say how the training data were reshaped
        p = protocol()
        pool = p.get("candidate_pool") or {}
        text += (
            f"; {p.get('n_train_refs')} training refs; backbone weights "
            f"{p.get('backbone_weights')}; labels {p.get('label_scaling')}"
        )
        if p.get("ddcup"):
            text += (
                f"; DDCUp reference set {p.get('ddcup_reference_set')} "
                f"({p.get('n_ddcup_refs')} refs), candidate pool {pool.get('size')} "
                f"(rule {pool.get('rule')}, seed {pool.get('seed')}, of "
                f"{pool.get('source_size')}; {pool.get('file')}), encoder weights "
                f"{p.get('encoder_weights')}"
            )
        up = (
            f"DDCUp on (+{p['n_upsampled']} samples; k={p['k']}, T_ref={p['T_ref']}, "
            f"weights={p['weights']}, encoder={p['encoder']})"
            if p.get("ddcup")
            else "DDCUp off"
        )
        down = (
            f"DRCDown on (T_f={p['T_f']}, T_q={p['T_q']}, T_u={p['T_u']}, rule={p['rule']}"
            f"{', also upsampled' if p.get('drcdown_on_upsampled') else ''})"
            if p.get("drcdown")
            else "DRCDown off"
        )
        text += f"; train: {p['train']} ({p['n_train_original']} original); {up}; {down}"
    return text


@rank_zero_only
def print_report(
    metrics: Mapping[str, float],
    names: Sequence[str],
    rows: Sequence[tuple[str, str]],
    caption: str,
) -> None:
    """Print val/test metrics per selection rule as a rich table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="SynDR-IQA results", caption=caption, caption_justify="left")
    table.add_column("dataset")
    table.add_column("checkpoint")
    for metric in METRIC_NAMES:
        table.add_column(metric.upper().replace("_LOGISTIC", "-log"), justify="right")
    datasets = [("val", "val"), *[(n, n) for n in names]]
    for label, name in datasets:
        for prefix, rule in rows:
            key_prefix = f"{prefix}/" if name == "val" else f"{prefix}/{name}/"
            if name == "val" and not prefix.startswith("val"):
                continue
            if name != "val" and prefix.startswith("val"):
                continue
            values = [metrics.get(f"{key_prefix}{m}") for m in METRIC_NAMES]
            if all(v is None for v in values):
                continue
            table.add_row(label, rule, *["-" if v is None else f"{v:.4f}" for v in values])
    Console().print(table)


# ------------------------------------------------------------------------ the task
def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test one model as configured; return every final metric as floats."""
    _validate_before_building(cfg)
    out_dir = Path(str(cfg.paths.output_dir)).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_run_files(cfg, out_dir)
    L.seed_everything(int(cfg.get("seed", 0)), workers=True)

    rule = apply_selection(cfg)
    datamodule = build_datamodule(cfg)
    if isinstance(getattr(datamodule, "protocol_extra", None), dict):
        datamodule.protocol_extra.update(_run_protocol(cfg, rule))  # type: ignore[union-attr]
    model = _instantiate(cfg.model, "model")
    callbacks = _instantiate_mapping(cfg.get("callbacks"), "callbacks")
    callbacks.extend(_safety_callbacks(cfg))
    selection = TestSetSelection() if cfg.get("select_on_test", False) else None
    if selection is not None:
        callbacks.append(selection)
    loggers = build_loggers(cfg)
    if not loggers:
        # LearningRateMonitor refuses to run without a logger; nothing to record anyway.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    try:
        trainer: L.Trainer = _instantiate(
            cfg.trainer,
            "trainer",
            callbacks=callbacks,
            logger=loggers or False,
            **_progress_bar_setting(cfg, callbacks),
        )
        hparams = _plain_config(cfg)
        for lg in trainer.loggers:  # loggers write on rank 0 only
            lg.log_hyperparams(hparams)
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics = _evaluate(cfg, trainer, model, datamodule)
        if selection is not None:
            metrics.update(selection.metrics())
        _write_metrics(metrics, out_dir, cfg, rule)
        best_epoch = metrics.get("val/epoch")
        chosen = f"best val/srcc (epoch {best_epoch:.0f})" if best_epoch is not None else "final"
        if rule == "last":
            chosen = "last epoch"
        rows = [
            ("val", chosen),
            ("val_last", "last"),
            ("test", chosen),
            ("test_last", "last"),
            ("test_best_on_test", "best epoch on TEST (optimistic)"),
        ]
        caption = "max val/srcc" if best_epoch is not None else "final weights (no checkpoint)"
        if rule == "last":
            caption = "last epoch (nothing held out; no model selection)"
        print_report(
            metrics,
            list(getattr(datamodule, "test_names", [])),
            rows,
            _protocol(cfg, datamodule, caption),
        )
    finally:
        _finish_wandb(loggers)
    return metrics


def _val_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor == VAL_MONITOR:
            return cb
    return None


def _last_checkpoint_path(trainer: L.Trainer) -> str:
    """Path of the checkpoint of the latest epoch (the unmonitored ModelCheckpoint's)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor is None and cb.best_model_path:
            return cb.best_model_path
    val = _val_checkpoint(trainer)
    return val.last_model_path if val is not None else ""


def _evaluate(cfg: DictConfig, trainer: L.Trainer, model: Any, datamodule: Any) -> dict[str, float]:
    """Validation/test metrics of the val-selected checkpoint and of the last epoch."""
    last = _to_floats(trainer.callback_metrics)
    metrics: dict[str, float] = {}
    for key, value in last.items():
        if key.startswith("val/"):
            metrics["val_last/" + key[4:]] = value
        elif key.startswith("train/"):
            metrics[key] = value
    ckpt = _val_checkpoint(trainer)
    best_path = ckpt.best_model_path if ckpt is not None else ""
    last_path = _last_checkpoint_path(trainer)
    if best_path and Path(best_path).is_file():
        for result in trainer.validate(
            model, datamodule=datamodule, ckpt_path=best_path, verbose=False
        ):
            metrics.update({k: v for k, v in _to_floats(result).items() if k.startswith("val/")})
        epoch = _epoch_of(best_path)
        if epoch != "?":
            metrics["val/epoch"] = float(epoch)
    else:
        # No checkpoint (fast_dev_run or checkpointing off): the final weights are selected.
        metrics.update({k: v for k, v in last.items() if k.startswith("val/")})
    names = list(getattr(datamodule, "test_names", []) or [])
    if not cfg.get("test", True) or not names:
        return metrics
    model.test_prefix = "test"
    if best_path and Path(best_path).is_file():
        metrics.update(_run_test(trainer, model, datamodule, best_path))
        if last_path and Path(last_path).is_file():
            model.test_prefix = "test_last"
            metrics.update(_run_test(trainer, model, datamodule, last_path))
            model.test_prefix = "test"
    else:
        metrics.update(_run_test(trainer, model, datamodule, None))
    return metrics


def _run_test(
    trainer: L.Trainer, model: Any, datamodule: Any, ckpt: str | None
) -> dict[str, float]:
    out: dict[str, float] = {}
    for result in trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False):
        out.update(_to_floats(result))
    return out


@rank_zero_only
def _write_metrics(
    metrics: Mapping[str, float], out_dir: Path, cfg: DictConfig, rule: str = "val"
) -> None:
    info = {
        "git_sha": git_sha(),
        "seed": int(cfg.get("seed", 0)),
        "status": "completed",
        "selection": rule,
    }
    try:
        from syndr_lightning.utils.sweep import save_job_metrics
    except ImportError:
        with atomic_open(out_dir / "metrics.json", "w", encoding="utf-8") as fh:
            json.dump({"metrics": dict(metrics), "info": info}, fh, indent=2, sort_keys=True)
        return
    save_job_metrics(metrics, out_dir, extra=info)
