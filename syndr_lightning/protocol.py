"""The protocol of a run: what a results table must state about how the data were used.

One :class:`Protocol` gives both the one-line text (the caption of the results table) and
the JSON written as ``syndr_protocol.json``. During a run ``train.py`` builds it once from
the datamodule's typed facts (:meth:`Protocol.from_facts`); reading runs back,
:meth:`Protocol.from_config` builds it from a resolved config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syndr_lightning.data import VAL_FRACTION
from syndr_lightning.data.facts import DataFacts, SynDRFacts, count, describe_dataset
from syndr_lightning.reshape.params import ReshapeParams, recorded_keys
from syndr_lightning.utils.io import git_sha

#: Reshaping settings a protocol names (the paper's hyper-parameters and switches).
PROTOCOL_KEYS = recorded_keys()


@dataclass(frozen=True)
class Protocol:
    """Training data, validation, evaluation crops, reshaping and seed of one run."""

    train: str
    seed: int
    val: str
    eval_crops: int | str
    eval_crop_mode: str
    crop_size: int | str
    n_val: int | None = None
    centre_crop_sets: tuple[str, ...] = ()
    selection: str | None = None
    n_train_original: int | None = None
    reshape: ReshapeParams | None = None
    n_upsampled: int | None = None  # None: not known (read back from a config)
    upsample_key: str | None = None
    drcdown_on_upsampled: bool = False
    n_train_refs: int | None = None
    train_types: tuple[int, ...] = ()
    n_val_refs: int | None = None
    test_resize: dict[str, int] = field(default_factory=dict)
    hflip: bool | None = None
    #: the paper-protocol facts of DDCUp's data and the labels (SynDRDataModule.facts())
    syndr: SynDRFacts | None = None
    #: facts of the run configuration (weights loaded, selection rule; RunConfig.facts)
    extra: dict[str, Any] = field(default_factory=dict)
    git: str = field(default_factory=git_sha)

    @classmethod
    def from_facts(
        cls,
        facts: DataFacts,
        reshape: ReshapeParams | None,
        seed: int,
        extra: Mapping[str, Any],
        selection: str | None = None,
    ) -> Protocol:
        """The protocol of a set-up datamodule's :class:`DataFacts` and the run's
        configuration (``reshape`` is reported where the data reshaped: ``facts.syndr``)."""
        syndr = facts.syndr
        return cls(
            train=facts.train,
            seed=int(seed),
            val=f"{facts.val_fraction:.2f} of training refs held out",
            eval_crops=facts.eval_crops,
            eval_crop_mode=facts.eval_crop_mode,
            crop_size=facts.crop_size,
            n_val=facts.n_val,
            centre_crop_sets=facts.centre_crop_sets,
            selection=selection,
            n_train_original=facts.n_train_original,
            reshape=reshape if syndr is not None else None,
            n_upsampled=0 if syndr is None else syndr.n_upsampled,
            upsample_key=None if syndr is None else syndr.upsample_key,
            drcdown_on_upsampled=syndr is not None and syndr.drcdown_on_upsampled,
            n_train_refs=facts.n_train_refs,
            train_types=facts.train_types,
            n_val_refs=facts.n_val_refs,
            test_resize=dict(facts.test_resize),
            hflip=facts.hflip,
            syndr=syndr,
            extra=dict(extra),
        )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], git: str = "unknown") -> Protocol:
        """The protocol a run's resolved config (``config_resolved.yaml``) describes."""
        data = dict(cfg.get("data") or {})
        train = dict(data.get("train") or {})
        reshape = cfg.get("reshape")
        return cls(
            train=describe_dataset(train.get("name", "?"), train.get("options")),
            seed=int(cfg.get("seed", 0)),
            val=f"{float(data.get('val_fraction', VAL_FRACTION)):.2f} of training refs held out",
            eval_crops=data.get("eval_crops", "?"),
            eval_crop_mode=str(data.get("eval_crop_mode", "?")),
            crop_size=data.get("crop_size", "?"),
            reshape=ReshapeParams.from_config(reshape) if reshape else None,
            drcdown_on_upsampled=bool(data.get("drcdown_on_upsampled", False)),
            git=git,
        )

    def to_json(self) -> dict[str, Any]:
        """``syndr_protocol.json``: the keys every SynDR run has written."""
        out: dict[str, Any] = {
            "train": self.train,
            "n_train_refs": self.n_train_refs or 0,
            "train_types": list(self.train_types),
            "n_train_original": self.n_train_original,
            **(self.syndr.to_json() if self.syndr is not None else {}),
            "n_upsampled": self.n_upsampled,
            "upsample_key": self.upsample_key,
        }
        if self.reshape is not None:
            flat = self.reshape.flat()
            out.update(
                {
                    "ddcup": self.reshape.ddcup,
                    "drcdown": self.reshape.drcdown,
                    "drcdown_on_upsampled": self.drcdown_on_upsampled,
                    **{k: flat[k] for k in PROTOCOL_KEYS},
                }
            )
        crops = f"{self.eval_crops} x {self.eval_crop_mode} {self.crop_size}"
        out.update(
            {
                "val": self.val,
                "n_val_refs": self.n_val_refs or 0,
                "eval_crops": crops,
                "test_resize": dict(self.test_resize),
                "hflip": self.hflip,
                **self.extra,
                "seed": self.seed,
            }
        )
        out["git"] = self.git
        return out

    def reshaping(self) -> str:
        """``DDCUp on (...); DRCDown on (...)`` (or ``off``) with the paper's names."""
        if self.reshape is None:
            return "no reshaping"
        up, down = self.reshape.ddcup_params, self.reshape.drcdown_params
        added = "" if self.n_upsampled is None else f"+{self.n_upsampled} samples; "
        ddcup = (
            f"DDCUp on ({added}k={up.k}, T_ref={up.T_ref}, "
            f"weights={up.weights}, encoder={up.encoder})"
            if self.reshape.ddcup
            else "DDCUp off"
        )
        drcdown = (
            f"DRCDown on (T_f={down.T_f}, T_q={down.T_q}, T_u={down.T_u}, rule={down.rule}"
            f"{', also upsampled' if self.drcdown_on_upsampled else ''})"
            if self.reshape.drcdown
            else "DRCDown off"
        )
        return f"{ddcup}; {drcdown}"

    def line(self) -> str:
        """The one-line protocol printed under a results table."""
        crops = f"{count(self.eval_crops, f'{self.eval_crop_mode} crop')} of {self.crop_size} px"
        if self.centre_crop_sets:
            crops += f" (one centre crop for {', '.join(self.centre_crop_sets)})"
        if self.test_resize:
            resized = ", ".join(f"{k} shorter side {v}" for k, v in self.test_resize.items())
            crops += f" (resized first: {resized})"
        parts = []
        if self.selection is not None:
            parts.append(f"selection: {self.selection}")
        if self.n_val is not None:
            parts.append(f"validation: {self.n_val} held-out images")
        parts += [f"eval: {crops}", f"seed {self.seed}"]
        if self.reshape is not None:
            facts = self.syndr.to_json() if self.syndr is not None else {}
            parts.append(
                f"{self.n_train_refs} training refs; backbone weights "
                f"{self.extra.get('backbone_weights')}; labels {facts.get('label_scaling')}"
            )
            if self.reshape.ddcup:
                pool = facts.get("candidate_pool") or {}
                parts.append(
                    f"DDCUp reference set {facts.get('ddcup_reference_set')} "
                    f"({facts.get('n_ddcup_refs')} refs), candidate pool {pool.get('size')} "
                    f"(rule {pool.get('rule')}, seed {pool.get('seed')}, of "
                    f"{pool.get('source_size')}; {pool.get('file')}), encoder weights "
                    f"{facts.get('encoder_weights')}"
                )
            original = f" ({self.n_train_original} original)" if self.n_train_original else ""
            parts.append(f"train: {self.train}{original}; {self.reshaping()}")
        return "; ".join(parts)
