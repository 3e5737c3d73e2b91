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
from syndr_lightning.data.paper_protocol import DATA_KEYS, DataProtocol
from syndr_lightning.evaluation import has_validation, resolve_selection
from syndr_lightning.models.backbones import weights_name
from syndr_lightning.models.params import ModelParams
from syndr_lightning.reshape.params import FeaturePassParams, ReshapeParams
from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.runchecks import check_run_settings

__all__ = ["RunConfig", "target_class"]

_IMAGE_CHECK = "syndr_lightning.data.check_images.ImageCheck"
_TEST_SELECTION = "syndr_lightning.callbacks.test_selection.TestSetSelection"
_PREEMPTION = "syndr_lightning.callbacks.preemption.PreemptionCheckpoint"
_RESUME = "syndr_lightning.callbacks.resume.ExactResume"


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def target_class(cfg: DictConfig, group: str, base: type, why: str) -> type:
    """The class ``<group>._target_`` names, a ``base`` (else a ConfigError saying ``why``)."""
    target = cfg[group].get("_target_")
    if not target:
        raise ConfigError(f"{group}._target_ is missing; e.g. {base.__module__}.{base.__name__}")
    try:
        cls = get_class(str(target))
    except Exception as exc:  # hydra raises plain ImportError/ValueError variants
        raise ConfigError(f"{group}._target_={target!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(
            f"{group}._target_={target} is not a {base.__name__}; {why}, so use "
            f"{base.__module__}.{base.__name__} or a subclass"
        )
    return cls


def _accepts(cls: type, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


#: Arguments of the data module that only the typed objects fill (never a config key).
_TYPED_ARGS = ("reshape", "protocol")


def _data_keys(dm_cls: type) -> set[str]:
    """The ``data`` keys ``dm_cls`` takes: its and its bases' ``__init__`` arguments."""
    keys: set[str] = set()
    for klass in dm_cls.__mro__:
        if issubclass(klass, IQADataModule):
            for name, p in inspect.signature(klass.__init__).parameters.items():
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name != "self":
                    keys.add(name)
    return keys - set(_TYPED_ARGS)


def _check_data_keys(data: DictConfig, dm_cls: type) -> None:
    """One door per value: the reshaping parameters come from the ``reshape`` group only,
    and every other ``data`` key must be an argument of the data module."""
    doors = {
        "reshape": "the reshape group, e.g. reshape.T_f=0.05 reshape.ddcup=false",
        "protocol": "data.candidate_pool, data.ddcup_reference_set, data.label_scaling",
    }
    for key in _TYPED_ARGS:
        if key in data:
            raise ConfigError(
                f"data.{key} is not a setting: its values have one door ({doors[key]}); "
                f"remove data.{key}"
            )
    accepted = _data_keys(dm_cls) | set(DATA_KEYS) | {"_target_"}
    unknown = sorted(str(k) for k in data if k not in accepted)
    if unknown:
        raise ConfigError(
            f"data has unknown keys {unknown} for {dm_cls.__name__}; allowed: "
            f"{', '.join(sorted(accepted - {'_target_'}))}"
        )


@dataclass(frozen=True)
class RunConfig:
    """What one run is built from, every value validated (see the module docstring)."""

    seed: int
    selection: str  # the rule of the headline test/* numbers: "val" or "last"
    select_on_test: bool
    #: the model group (the only route of model.* into the LightningModule) and its class
    model: ModelParams
    model_class: type
    #: the data module's class (``data._target_``)
    data_class: type
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
        from syndr_lightning.models.module import BIQAModule

        model_cls = target_class(cfg, "model", BIQAModule, "train() builds it from ModelParams")
        model = ModelParams.from_config(_plain(cfg.model))
        dm_cls = target_class(
            cfg, "data", IQADataModule, "train() reports the data it trained on (SynDRDataModule)"
        )
        _check_data_keys(cfg.data, dm_cls)
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
        check_run_settings(cfg)  # RUN_NUMBERS, max_epochs=0, cache folders (utils/runchecks.py)
        select_on_test = bool(cfg.get("select_on_test", False))
        pixels, seed = cfg.get("max_image_pixels"), cfg.get("seed", 0)
        if seed is None:
            raise ConfigError("seed=None is out of range; allowed: an integer >= 0")
        encoder = None if reshape is None else reshape.ddcup_params
        return cls(
            seed=int(seed),  # checked: RUN_NUMBERS
            selection=rule,
            select_on_test=select_on_test,
            model=model,
            model_class=model_cls,
            data_class=dm_cls,
            reshape=reshape if _accepts(dm_cls, "reshape") else None,
            data_protocol=protocol,
            feature_pass=feature_pass,
            callbacks=callbacks,
            max_image_pixels=None if pixels is None else int(pixels),
            log_dir=_log_dir(cfg),
            facts={
                "backbone": model.backbone,
                "backbone_weights": weights_name(model.backbone, model.weights),
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


def _check_reshape_is_used(cfg: DictConfig, reshape: ReshapeParams, dm_cls: type) -> None:
    """A reshaping switch that is on must reach a data module that can reshape (else the
    run would be the baseline while its saved config says DDCUp/DRCDown)."""
    if _accepts(dm_cls, "reshape"):
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
