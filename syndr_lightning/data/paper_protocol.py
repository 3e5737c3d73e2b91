"""The paper's data protocol: its switches (:class:`DataProtocol`) and plain functions
(candidate pool, label scaling, name lists).

Free of Lightning and Hydra; used by :class:`~syndr_lightning.data.syndr.SynDRDataModule`
and by ``experiments/label_scaling.py``. See docs/syndr.md ("Where we follow the
reference code") for what each switch reproduces.

* :func:`draw_pool`: DDCUp's candidate pool, as many candidates as DDCUp's reference set
  (paper Sec. 3.2; the authors' ``kadid_add81`` has 81), drawn reproducibly.
* :func:`minmax_scores` / :func:`rescale_rows`: the authors' label scaling (KADID-10k DMOS
  min-max scaled to 0..10 over 81 references x the target's types, and again over each
  epoch's kept subset).
* :func:`label_scaling_report`: how far that scaling moves labels and the ``T_q`` band.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.io import atomic_open

__all__ = [
    "DATA_KEYS",
    "LABEL_SCALINGS",
    "POOL_FILE",
    "REFERENCE_SETS",
    "DataProtocol",
    "draw_pool",
    "label_scaling_report",
    "minmax_scores",
    "read_name_list",
    "rescale_rows",
    "resolve_pool_size",
    "write_name_list",
]

#: ``data.label_scaling``: ``authors`` = min-max over every reference x the training
#: types, again over each epoch's kept subset; ``dataset`` = min-max over the whole label
#: file (the loaders' scaling).
LABEL_SCALINGS: tuple[str, ...] = ("authors", "dataset")
#: ``data.ddcup_reference_set``: ``all`` = every reference of the training dataset that is
#: not held out for evaluation (KADID-10k: 81 with nothing held out), labels from the
#: whole label file; ``train`` = the training manifest's references and labels.
REFERENCE_SETS: tuple[str, ...] = ("all", "train")
#: The ``data`` keys :meth:`DataProtocol.from_config` reads (not arguments of the data module).
DATA_KEYS: tuple[str, ...] = ("candidate_pool", "ddcup_reference_set", "label_scaling")
#: Name of the candidate-pool list file (one candidate id per line), written beside the
#: upsampled set and into the run folder.
POOL_FILE = "candidate_pool.txt"


def _pool_size(size: Any) -> int | str:
    """``data.candidate_pool.size`` checked: ``refset``, ``all`` or an integer >= 1."""
    if isinstance(size, str) and size.lower() in ("refset", "all"):
        return size.lower()
    try:
        ok = not isinstance(size, bool) and float(size) == int(size) and int(size) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(
            f"data.candidate_pool.size={size!r} is not allowed; use refset (as many "
            f"candidates as DDCUp's reference set, the paper), all, or an integer >= 1"
        )
    return int(size)


@dataclass(frozen=True)
class DataProtocol:
    """The paper-protocol switches of SynDR's data (``data.candidate_pool``,
    ``data.ddcup_reference_set``, ``data.label_scaling``), validated once; the defaults
    here are the only ones (a data config that does not name a switch gets them)."""

    pool_size: int | str = "all"
    pool_seed: int = 0
    reference_set: str = "train"
    label_scaling: str = "dataset"

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool_size", _pool_size(self.pool_size))
        try:
            object.__setattr__(self, "pool_seed", int(self.pool_seed))
        except (TypeError, ValueError):
            raise ConfigError(
                f"data.candidate_pool.seed={self.pool_seed!r} must be an integer"
            ) from None
        for key, value, allowed in (
            ("data.ddcup_reference_set", self.reference_set, REFERENCE_SETS),
            ("data.label_scaling", self.label_scaling, LABEL_SCALINGS),
        ):
            if value not in allowed:
                raise ConfigError(
                    f"{key}={value!r} is unknown; allowed values: {', '.join(allowed)}"
                )

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | DataProtocol | None) -> DataProtocol:
        """Build from the ``data`` config mapping (other keys of it are ignored)."""
        if isinstance(data, DataProtocol):
            return data
        data = dict(data or {})
        pool_key, refset_key, scaling_key = DATA_KEYS
        pool = data.get(pool_key) or {}
        if not isinstance(pool, Mapping) or set(pool) - {"size", "seed"}:
            raise ConfigError(
                f"data.candidate_pool={pool!r}: allowed keys are size (refset | all | an "
                f"integer) and seed"
            )
        given = {
            "pool_size": pool.get("size"),
            "pool_seed": pool.get("seed"),
            "reference_set": data.get(refset_key),
            "label_scaling": data.get(scaling_key),
        }
        return cls(**{k: v for k, v in given.items() if v is not None})


def resolve_pool_size(size: Any, n_reference_set: int, n_available: int) -> int:
    """How many candidates the pool holds.

    ``size``: ``"refset"`` (as many as DDCUp's reference set, the paper's rule), ``"all"``
    (every candidate) or a positive integer (checked again here for notebook use). Never
    more than ``n_available``.
    """
    size = _pool_size(size)
    wanted = {"refset": n_reference_set, "all": n_available}.get(size, size)  # type: ignore[call-overload]
    return min(int(wanted), int(n_available))


def draw_pool(
    candidates: Mapping[str, Path], size: Any, n_reference_set: int, seed: int
) -> dict[str, Path]:
    """A seeded draw of ``resolve_pool_size(...)`` candidates, in name order.

    The draw is a pure function of (the sorted candidate names, size, seed): the same
    files give the same pool on every machine.
    """
    if not candidates:
        raise DatasetError("the DDCUp candidate source lists no images")
    names = sorted(candidates)
    n = resolve_pool_size(size, n_reference_set, len(names))
    if n >= len(names):
        return {k: Path(candidates[k]) for k in names}
    picked = np.random.default_rng(int(seed)).choice(len(names), size=n, replace=False)
    return {names[i]: Path(candidates[names[i]]) for i in sorted(int(i) for i in picked)}


def write_name_list(path: str | os.PathLike[str], names: Sequence[str]) -> Path:
    """Write ``names`` one per line (atomically); return the path."""
    out = Path(path)
    with atomic_open(out, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(f"{n}\n" for n in names))
    return out


def read_name_list(path: str | os.PathLike[str]) -> list[str]:
    """Read a file written by :func:`write_name_list`."""
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line]


def minmax_scores(
    raw: np.ndarray | pd.Series,
    lo: float,
    hi: float,
    higher_is_better: bool = True,
) -> np.ndarray:
    """Min-max ``raw`` onto 0..10 with the range ``[lo, hi]`` (flipped when lower is better)."""
    values = np.asarray(raw, dtype=np.float64)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        raise DatasetError(
            f"cannot min-max scale labels over the range [{lo}, {hi}]; the label file needs "
            f"at least two different finite scores"
        )
    scaled = (values - lo) / (hi - lo) * 10.0
    return scaled if higher_is_better else 10.0 - scaled


def rescale_rows(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Copy of ``scores`` with ``scores[rows]`` min-max rescaled to 0..10 over those rows.

    The reference code re-reads its labels for every epoch's kept subset and min-max
    scales them again over that subset; since every 0..10 score is an increasing affine
    function of the raw label, rescaling the scores equals rescaling the raw labels.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    idx = np.asarray(rows, dtype=np.int64)
    if idx.size < 2:
        return out
    part = out[idx]
    lo, hi = float(part.min()), float(part.max())
    if hi > lo:
        out[idx] = (part - lo) / (hi - lo) * 10.0
    return out


def label_scaling_report(
    table: pd.DataFrame, types: Sequence[int], T_q: float = 1.0
) -> dict[str, float]:
    """How the authors' scaling differs from whole-file scaling on one type subset.

    ``table``: every row of the label file with ``raw_score`` (higher is better) and
    ``dist_type``. Returns the raw ranges, the DMOS width of the ``T_q`` band under each
    scaling, their ratio, and the mean / max absolute change of the 0..10 labels of the
    subset's images.
    """
    raw = table["raw_score"].to_numpy(dtype=np.float64)
    keep = table["dist_type"].isin([int(t) for t in types]).to_numpy()
    if not keep.any():
        raise DatasetError(f"no image of types {list(types)} in the label file")
    lo_all, hi_all = float(np.nanmin(raw)), float(np.nanmax(raw))
    lo_sub, hi_sub = float(np.nanmin(raw[keep])), float(np.nanmax(raw[keep]))
    whole = minmax_scores(raw[keep], lo_all, hi_all)
    authors = minmax_scores(raw[keep], lo_sub, hi_sub)
    delta = np.abs(authors - whole)
    band_all = T_q * (hi_all - lo_all) / 10.0
    band_sub = T_q * (hi_sub - lo_sub) / 10.0
    return {
        "n_images": int(keep.sum()),
        "raw_min_file": lo_all,
        "raw_max_file": hi_all,
        "raw_min_subset": lo_sub,
        "raw_max_subset": hi_sub,
        "T_q_dmos_dataset": band_all,
        "T_q_dmos_authors": band_sub,
        "T_q_band_ratio": band_sub / band_all if band_all > 0 else float("nan"),
        "label_shift_mean": float(delta.mean()),
        "label_shift_max": float(delta.max()),
    }
