"""One typed run configuration, built once from the composed config.

:meth:`RunConfig.from_config` checks every value of a composed config before any
Trainer, logger or cache exists (each bad value raises one ``ConfigError`` /
``DatasetError`` line naming its key) and holds what the run is built from: the
reshaping parameters (``ReshapeParams``), the data protocol (``DataProtocol``: candidate
pool, DDCUp's reference set, label scaling), the feature pass, the selection rule and
the list of callbacks (the YAML ones the rule keeps, the image check, the opt-in
test-set selection). ``train()`` builds it first, also when called from Python.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from syndr_lightning.data.datamodule import IQADataModule
from syndr_lightning.data.paper_protocol import DataProtocol
from syndr_lightning.evaluation import has_validation, resolve_selection
from syndr_lightning.models.backbones import BACKBONES, weights_name
from syndr_lightning.reshape.params import FeaturePassParams, ReshapeParams
from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.runchecks import check_run

__all__ = ["RunConfig", "datamodule_class"]

_IMAGE_CHECK = "syndr_lightning.data.check_images.ImageCheck"
_TEST_SELECTION = "syndr_lightning.callbacks.test_selection.TestSetSelection"
_PREEMPTION = "syndr_lightning.callbacks.preemption.PreemptionCheckpoint"
_RESUME = "syndr_lightning.callbacks.resume.ExactResume"


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def datamodule_class(cfg: DictConfig) -> type:
    """The class ``data._target_`` names (a ConfigError when it cannot be imported)."""
    target = cfg.data.get("_target_")
    if not target:
        raise ConfigError(
            "data._target_ is missing; e.g. syndr_lightning.data.datamodule.IQADataModule"
        )
    try:
        return get_class(str(target))
    except Exception as exc:  # hydra raises plain ImportError/ValueError variants
        raise ConfigError(f"data._target_={target!r} cannot be imported: {exc}") from None


def _accepts(cls: type, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


@dataclass(frozen=True)
class RunConfig:
    """What one run is built from, every value validated (see the module docstring)."""

    seed: int
    selection: str  # the rule of the headline test/* numbers: "val" or "last"
    select_on_test: bool
    #: the reshape group (None: a data module that does not reshape, or no group)
    reshape: ReshapeParams | None
    data_protocol: DataProtocol | None
    feature_pass: FeaturePassParams | None
    #: (name, config with _target_) of every callback, in build order
    callbacks: tuple[tuple[str, DictConfig], ...]
    max_image_pixels: int | None = None
    #: ``paths.log_dir`` (the requeue pointers of preempted SLURM jobs live there)
    log_dir: str | None = None
    #: facts of the configuration for the run report (weights loaded, selection)
    facts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DictConfig, *, check_data: bool = True) -> RunConfig:
        """Validate ``cfg`` and build the run configuration (nothing else is built);
        ``check_data=False`` skips the check that the dataset folders exist."""
        for group in ("data", "model", "trainer"):
            if cfg.get(group) is None:
                raise ConfigError(f"config group {group!r} is missing; add `{group}: <choice>`")
        backbone = OmegaConf.select(cfg, "model.backbone")
        if backbone is not None and backbone not in BACKBONES:
            raise ConfigError(
                f"model.backbone={backbone!r} is unknown; allowed values: {', '.join(BACKBONES)}"
            )
        dm_cls = datamodule_class(cfg)
        if not issubclass(dm_cls, IQADataModule):
            raise ConfigError(
                f"data._target_={cfg.data._target_} is not an IQADataModule; train() reports "
                f"the data it trained on, so use syndr_lightning.data.datamodule.IQADataModule "
                f"or a subclass (SynDRDataModule)"
            )
        reshape = ReshapeParams.from_config(_plain(cfg.reshape)) if cfg.get("reshape") else None
        if reshape is not None and (reshape.ddcup or reshape.drcdown):
            _check_reshape_is_used(cfg, reshape, dm_cls)
        data = _plain(cfg.data)
        protocol = DataProtocol.from_config(data) if _accepts(dm_cls, "protocol") else None
        feature_pass = (
            FeaturePassParams.from_config(data.get("feature_pass"))
            if "feature_pass" in data
            else None
        )
        if check_data:
            _check_datasets(cfg.data)
        if cfg.trainer.get("sync_batchnorm") and cfg.trainer.get("accelerator") == "cpu":
            raise ConfigError(
                "trainer.sync_batchnorm=true works on GPUs only; with trainer.accelerator=cpu "
                "set trainer.sync_batchnorm=false"
            )
        rule = resolve_selection(cfg)
        callbacks = _callbacks(cfg, rule)
        monitors = [str(c.get("monitor")) for _, c in callbacks if c.get("monitor")]
        if (
            rule == "val"
            and not has_validation(cfg)
            and any(m.startswith("val/") for m in monitors)
        ):
            raise ConfigError(
                "data.val_fraction=0 and no data.val: there is no validation set for model "
                "selection; set data.val_fraction (e.g. 0.2) or data.val, or drop the "
                "checkpoint monitor (callbacks.model_checkpoint.monitor=null)"
            )
        check_run(cfg)  # max_epochs=0, a cache folder that is a file (utils/runchecks.py)
        select_on_test = bool(cfg.get("select_on_test", False))
        model = cfg.model
        encoder = None if reshape is None else reshape.ddcup_params
        return cls(
            seed=_seed(cfg.get("seed", 0)),
            selection=rule,
            select_on_test=select_on_test,
            reshape=reshape if _accepts(dm_cls, "reshape") else None,
            data_protocol=protocol,
            feature_pass=feature_pass,
            callbacks=callbacks,
            max_image_pixels=_pixels(cfg.get("max_image_pixels")),
            log_dir=_log_dir(cfg),
            facts={
                "backbone": model.get("backbone"),
                "backbone_weights": weights_name(str(model.get("backbone")), model.get("weights")),
                "encoder": None if encoder is None else encoder.encoder,
                "encoder_weights": None
                if encoder is None
                else weights_name(encoder.encoder, encoder.encoder_weights),
                "selection": rule + (" + best-on-test (labelled)" if select_on_test else ""),
            },
        )


def _log_dir(cfg: DictConfig) -> str | None:
    value = OmegaConf.select(cfg, "paths.log_dir")
    return str(value) if value else None


def _seed(value: Any) -> int:
    try:
        seed = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"seed must be an integer, got {value!r}") from None
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    return seed


def _pixels(value: Any) -> int | None:
    if value is None:
        return None
    try:
        ok = not isinstance(value, bool) and int(value) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(
            f"max_image_pixels={value!r} must be a positive integer (width x height), e.g. "
            f"178956970"
        )
    return int(value)


def _check_reshape_is_used(cfg: DictConfig, reshape: ReshapeParams, dm_cls: type) -> None:
    """A reshaping switch that is on must reach a data module that can reshape (else the
    run would be the baseline while its saved config says DDCUp/DRCDown)."""
    if cfg.data.get("reshape") is not None or _accepts(dm_cls, "reshape"):
        return
    on = [k for k in ("ddcup", "drcdown") if getattr(reshape, k)]
    keys = " and ".join(f"reshape.{k}=true" for k in on)
    raise ConfigError(
        f"{keys} but data._target_={cfg.data._target_} cannot reshape (it ignores "
        f"reshape.*); train the baseline with reshape=none, or use a data config with "
        f"syndr_lightning.data.syndr.SynDRDataModule (data=synthetic, data=syn2auth)"
    )


def _dataset_entries(data: DictConfig) -> Iterable[tuple[str, Any]]:
    if data.get("train") is not None:
        yield "data.train", data.train
    if data.get("val") is not None:
        yield "data.val", data.val
    for i, entry in enumerate(data.get("test") or []):
        yield f"data.test[{i}]", entry


def _check_datasets(data: DictConfig) -> None:
    for key, entry in _dataset_entries(data):
        name, root = entry.get("name"), entry.get("root")
        if not name or not root:
            raise ConfigError(f"{key} needs `name` (a dataset loader) and `root` (its path)")
        if name != "synthetic" and not Path(str(root)).expanduser().exists():
            raise DatasetError(
                f"{key}.root={str(root)!r} does not exist; download dataset {name!r} there, "
                f"or set {key}.root (or paths.data_dir / $SYNDR_DATA_DIR) to its folder"
            )


def _callbacks(cfg: DictConfig, rule: str) -> tuple[tuple[str, DictConfig], ...]:
    """Every callback of the run: the ``callbacks`` group (with ``rule=last`` the
    ``val/*``-monitored checkpoints dropped), the image check, the test-set selection."""
    node = cfg.get("callbacks")
    if node is not None and not isinstance(node, Mapping | DictConfig):
        raise ConfigError(
            f"callbacks must be a mapping of named entries with _target_, got {node!r}"
        )
    out: list[tuple[str, DictConfig]] = []
    for name, entry in (node or {}).items():
        if entry is None:
            continue
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            raise ConfigError(f"callbacks.{name} must be a mapping with a _target_, got {entry!r}")
        if rule == "last" and str(entry.get("monitor") or "").startswith("val/"):
            continue
        out.append((f"callbacks.{name}", entry))
    if cfg.get("check_images", True):
        cache_dir = OmegaConf.select(cfg, "paths.cache_dir")
        out.append(
            ("check_images", OmegaConf.create({"_target_": _IMAGE_CHECK, "cache_dir": cache_dir}))
        )
    if cfg.get("select_on_test", False):
        out.append(("select_on_test", OmegaConf.create({"_target_": _TEST_SELECTION})))
    # Atomic checkpoints and preemption (callbacks/preemption.py, docs/failures.md).
    run_dir = Path(str(OmegaConf.select(cfg, "paths.output_dir"))).expanduser()
    preemption = {"_target_": _PREEMPTION, "dirpath": str(run_dir / "checkpoints")}
    out.append(("preemption", OmegaConf.create({**preemption, "log_dir": _log_dir(cfg)})))
    # Exact resume: the epoch's logged sums, clean validation, run identity (callbacks/resume.py).
    out.append(("resume", OmegaConf.create({"_target_": _RESUME})))
    return tuple(out)
