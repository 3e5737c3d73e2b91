"""What a set-up DataModule tells the run report, as typed objects.

:meth:`IQADataModule.facts` returns :class:`DataFacts`; :class:`SynDRDataModule` adds
:class:`SynDRFacts` (DDCUp's data and the labels). ``protocol.Protocol.from_facts``
reads them; nothing between the datamodule and the report is looked up by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PoolFacts:
    """DDCUp's candidate pool as drawn: ``size`` candidates of ``source_size`` by ``rule``."""

    size: int
    rule: str
    seed: int
    source_size: int
    file: str

    def to_json(self) -> dict[str, Any]:
        """The ``candidate_pool`` entry of ``syndr_protocol.json``."""
        return {
            "size": self.size,
            "rule": self.rule,
            "seed": self.seed,
            "source_size": self.source_size,
            "file": self.file,
        }


@dataclass(frozen=True)
class SynDRFacts:
    """The reshaping facts of a set-up :class:`SynDRDataModule` (``None`` where off)."""

    label_scaling: str
    n_upsampled: int = 0
    upsample_key: str | None = None
    drcdown_on_upsampled: bool = False
    ddcup_reference_set: str | None = None
    n_ddcup_refs: int | None = None
    candidate_pool: PoolFacts | None = None
    encoder_weights: str | None = None
    #: the drawn candidates, listed in ``candidate_pool.txt`` of the run folder
    pool_names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The paper-protocol keys of ``syndr_protocol.json``."""
        return {
            "ddcup_reference_set": self.ddcup_reference_set,
            "n_ddcup_refs": self.n_ddcup_refs,
            "candidate_pool": None
            if self.candidate_pool is None
            else self.candidate_pool.to_json(),
            "encoder_weights": self.encoder_weights,
            "label_scaling": self.label_scaling,
        }


@dataclass(frozen=True)
class DataFacts:
    """Training data, validation and evaluation crops of a set-up datamodule."""

    train: str
    val_fraction: float
    eval_crops: int
    eval_crop_mode: str
    crop_size: int
    hflip: bool
    n_val: int | None = None
    n_val_refs: int | None = None
    n_train_refs: int | None = None
    train_types: tuple[int, ...] = ()
    centre_crop_sets: tuple[str, ...] = ()
    test_resize: dict[str, int] = field(default_factory=dict)
    n_train_original: int | None = None
    syndr: SynDRFacts | None = None


def describe_dataset(name: Any, options: Any = None) -> str:
    """``synthetic (kind=synthetic, n_refs=6, size=160x192)``: a dataset entry in words
    for the protocol line (not a Python dict)."""

    def value(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return "x".join(str(x) for x in v)
        return str(v)

    opts = ", ".join(f"{k}={value(v)}" for k, v in dict(options or {}).items())
    return f"{name} ({opts})" if opts else str(name)


def count(n: Any, word: str) -> str:
    """``1 random crop``, ``5 random crops`` (``n`` as given when it is no number)."""
    try:
        one = int(n) == 1
    except (TypeError, ValueError):
        one = False
    return f"{n} {word}" if one else f"{n} {word}s"
