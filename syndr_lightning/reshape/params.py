"""One frozen, validated parameter object per reshaping algorithm.

The ``reshape`` config group (``conf/reshape/syndr.yaml``) and these dataclasses are the
only homes of the defaults. :meth:`ReshapeParams.from_config` builds every object once
from the config mapping (unknown keys, wrong types and out-of-range values raise a
``ConfigError`` naming ``reshape.<key>``) and the objects are passed down whole: the
DataModule, the DRCDown engine and DDCUp's build read their fields, nothing re-validates
them. ``data.feature_pass`` builds :class:`FeaturePassParams` the same way.

Allowed values (``BACKENDS``, ``RULES``, ``WEIGHTS``, ``ENCODERS``) live here too; the algorithms
import them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from syndr_lightning.utils.errors import ConfigError, SyndrError

BACKENDS: tuple[str, ...] = ("auto", "torch", "faiss")
RULES: tuple[str, ...] = ("reference", "paper")
WEIGHTS: tuple[str, ...] = ("reference", "softmin")
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
#: DDCUp's frozen reference encoders (``reshape.encoder``; ``reshape/features.py`` builds them).
ENCODERS: tuple[str, ...] = (
    "resnet50",
    "clip_vit_b_16",
    "clip_vit_b16",  # the same CLIP ViT-B/16 image tower (older name)
    "vit_b_16",
    "swin_t",
    "efficientnet_lite0",
    "tiny_cnn",
)


#: Field metadata of the parameters every run's protocol names (``recorded_keys``).
_RECORDED = {"recorded": True}


def _number(value: Any, key: str, error: type[SyndrError] = ConfigError) -> float:
    """``value`` as a finite number (ints and floats kept as given, so reports show them
    as written; strings converted)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise error(f"{key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(out):
        raise error(f"{key} must be a finite number, got {value!r}")
    return value if isinstance(value, int | float) else out


def _integer(value: Any, key: str, minimum: int, default_note: str = "") -> int:
    try:
        ok = not isinstance(value, bool) and float(value) == int(value) and int(value) >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(
            f"{key}={value!r} is out of range; allowed: an integer >= {minimum}{default_note}"
        )
    return int(value)


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is unknown; allowed values: {', '.join(allowed)}")
    return str(value)


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be true or false")
    return value


def _set(obj: object, name: str, value: Any) -> None:
    """Store a normalised value on a frozen dataclass (inside ``__post_init__`` only)."""
    object.__setattr__(obj, name, value)


def check_T_f(value: Any, key: str = "reshape.T_f", error: type[SyndrError] = ConfigError) -> float:
    """The one range check of DRCDown's feature threshold (a cosine distance): 0 < T_f <= 2.
    ``DRCDownParams`` calls it for the config value (ConfigError), the pair-search kernels
    for their plain ``t_f`` argument (direct calls from a notebook: InputError)."""
    t_f = _number(value, key, error)
    if not 0.0 < t_f <= 2.0:
        raise error(
            f"{key}={value} is out of range; allowed: 0 < T_f <= 2 (a cosine distance; "
            f"paper default 0.1)"
        )
    return t_f


def check_T_q(value: Any, key: str = "reshape.T_q", error: type[SyndrError] = ConfigError) -> float:
    """The one range check of DRCDown's label threshold (a label gap on 0..10): T_q > 0
    (called like :func:`check_T_f`)."""
    t_q = _number(value, key, error)
    if not t_q > 0.0:
        raise error(
            f"{key}={value} is out of range; allowed: T_q > 0 (a label gap on the 0..10 "
            f"scale; paper default 1.0)"
        )
    return t_q


@dataclass(frozen=True)
class DRCDownParams:
    """DRCDown (paper names): similar pairs within ``T_f`` (cosine distance) and ``T_q``
    (label gap, 0..10 scale); clusters larger than ``T_u`` are thinned by ``rule``.
    ``backend`` picks the pair search; ``split_pairs`` splits it over DDP ranks."""

    T_f: float = field(default=0.1, metadata=_RECORDED)
    T_q: float = field(default=1.0, metadata=_RECORDED)
    T_u: int = field(default=20, metadata=_RECORDED)
    rule: str = field(default="reference", metadata=_RECORDED)
    backend: str = "auto"
    split_pairs: bool = True

    def __post_init__(self) -> None:
        _set(self, "T_f", check_T_f(self.T_f))
        _set(self, "T_q", check_T_q(self.T_q))
        _set(self, "T_u", _integer(self.T_u, "reshape.T_u", 1, " (paper default 20)"))
        _set(self, "rule", _choice(self.rule, "reshape.rule", RULES))
        _set(self, "backend", _choice(self.backend, "reshape.backend", BACKENDS))
        _set(self, "split_pairs", _flag(self.split_pairs, "reshape.split_pairs"))


@dataclass(frozen=True)
class DDCUpParams:
    """DDCUp: ``k`` nearest training references per candidate (or ``all``), neighbours
    within ``T_ref`` of the nearest's distance, pseudo-label ``weights`` (``temperature``
    for softmin); new references distorted at ``levels``; references embedded by a frozen
    ``encoder`` (``encoder_weights``, centre crop ``encoder_crop``);
    ``select_candidates=false`` adds every candidate (Table 4 rows b, d)."""

    k: int | str = field(default=5, metadata=_RECORDED)
    T_ref: float = field(default=0.05, metadata=_RECORDED)
    weights: str = field(default="reference", metadata=_RECORDED)
    temperature: float = field(default=0.05, metadata=_RECORDED)
    levels: tuple[int, ...] = (1, 3, 5)
    encoder: str = field(default="resnet50", metadata=_RECORDED)
    encoder_weights: str = "IMAGENET1K_V1"
    encoder_crop: int = 224
    select_candidates: bool = True

    def __post_init__(self) -> None:
        if self.k != "all":
            _set(self, "k", _integer(self.k, "reshape.k", 1, " or 'all' (paper default 5)"))
        t_ref = _number(self.T_ref, "reshape.T_ref")
        if not t_ref >= 0.0:
            raise ConfigError(
                f"reshape.T_ref={self.T_ref} is out of range; allowed: T_ref >= 0 (paper "
                f"default 0.05)"
            )
        _set(self, "T_ref", t_ref)
        _set(self, "weights", _choice(self.weights, "reshape.weights", WEIGHTS))
        temperature = _number(self.temperature, "reshape.temperature")
        if not temperature > 0:
            raise ConfigError(f"reshape.temperature={self.temperature} must be > 0")
        _set(self, "temperature", temperature)
        levels = self.levels if isinstance(self.levels, list | tuple) else (self.levels,)
        if not levels or any(lv not in LEVELS for lv in levels):
            raise ConfigError(
                f"reshape.levels must be a non-empty list of KADID levels 1..5; got {self.levels}"
            )
        _set(self, "levels", tuple(int(lv) for lv in levels))
        _set(self, "encoder", _choice(self.encoder, "reshape.encoder", ENCODERS))
        _set(self, "encoder_weights", str(self.encoder_weights))
        _set(self, "encoder_crop", _integer(self.encoder_crop, "reshape.encoder_crop", 1))
        _set(self, "select_candidates", _flag(self.select_candidates, "reshape.select_candidates"))


@dataclass(frozen=True)
class FeaturePassParams:
    """DRCDown's feature pass (``data.feature_pass``): centre crop ``crop_size`` (None: the
    training crop) after an optional short-side ``resize``, ``batch_size`` images per
    forward, loader ``num_workers``, float16 features when ``half``, a uint8 crop cache
    under ``data.cache_dir`` when ``cache``."""

    crop_size: int | None = None
    resize: int | None = None
    batch_size: int = 128
    num_workers: int = 0
    half: bool = False
    cache: bool = True

    def __post_init__(self) -> None:
        for name, minimum in (("crop_size", 1), ("resize", 1)):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _integer(value, f"data.feature_pass.{name}", minimum))
        _set(self, "batch_size", _integer(self.batch_size, "data.feature_pass.batch_size", 1))
        _set(self, "num_workers", _integer(self.num_workers, "data.feature_pass.num_workers", 0))
        _set(self, "half", _flag(self.half, "data.feature_pass.half"))
        _set(self, "cache", _flag(self.cache, "data.feature_pass.cache"))

    @classmethod
    def from_config(cls, given: Mapping[str, Any] | FeaturePassParams | None) -> FeaturePassParams:
        """Build from the ``data.feature_pass`` mapping (unknown keys are a ConfigError)."""
        if isinstance(given, FeaturePassParams):
            return given
        return cls(**_known(dict(given or {}), cls, "data.feature_pass"))


def _known(given: dict[str, Any], cls: type, where: str) -> dict[str, Any]:
    allowed = sorted(f.name for f in fields(cls))
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; allowed: {', '.join(allowed)}")
    return given


@dataclass(frozen=True)
class ReshapeParams:
    """The ``reshape`` config group: the two switches and each algorithm's parameters."""

    ddcup: bool = True
    drcdown: bool = True
    ddcup_params: DDCUpParams = field(default_factory=DDCUpParams)
    drcdown_params: DRCDownParams = field(default_factory=DRCDownParams)

    def __post_init__(self) -> None:
        _flag(self.ddcup, "reshape.ddcup")
        _flag(self.drcdown, "reshape.drcdown")

    @classmethod
    def from_config(cls, given: Mapping[str, Any] | ReshapeParams | None) -> ReshapeParams:
        """Build every parameter object from the flat ``reshape`` mapping, validated once.

        Keys are the paper's names (``k``, ``T_ref``, ``T_q``, ``T_f``, ``T_u``, ...), each
        belonging to exactly one algorithm; ``_target_`` and ``name`` are ignored.
        """
        if isinstance(given, ReshapeParams):
            return given
        values = dict(given or {})
        values.pop("_target_", None)
        values.pop("name", None)
        switches = {k: values.pop(k) for k in ("ddcup", "drcdown") if k in values}
        up_keys = {f.name for f in fields(DDCUpParams)}
        down_keys = {f.name for f in fields(DRCDownParams)}
        unknown = sorted(set(values) - up_keys - down_keys)
        if unknown:
            allowed = sorted(up_keys | down_keys | {"ddcup", "drcdown"})
            raise ConfigError(f"reshape has unknown keys {unknown}; allowed: {allowed}")
        return cls(
            **switches,
            ddcup_params=DDCUpParams(**{k: v for k, v in values.items() if k in up_keys}),
            drcdown_params=DRCDownParams(**{k: v for k, v in values.items() if k in down_keys}),
        )

    def flat(self) -> dict[str, Any]:
        """The flat ``reshape`` mapping again (protocol files, reports)."""
        out: dict[str, Any] = {"ddcup": self.ddcup, "drcdown": self.drcdown}
        for params in (self.ddcup_params, self.drcdown_params):
            out.update({f.name: getattr(params, f.name) for f in fields(params)})
        return out


def recorded_keys() -> tuple[str, ...]:
    """The reshaping parameters a run's protocol names (``syndr_protocol.json``): the
    fields of :class:`DDCUpParams` and :class:`DRCDownParams` marked as recorded."""
    return tuple(
        f.name
        for cls in (DDCUpParams, DRCDownParams)
        for f in fields(cls)
        if f.metadata.get("recorded")
    )
