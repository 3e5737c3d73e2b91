"""Reproducible train/val/test splits of a manifest, and the paper's named subsets.

Synthetic sets are split by reference content (no reference on both sides), authentic
sets by image. Every split is seeded and can be written to a JSON split file and read
back exactly (:func:`save_split` / :func:`load_split`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syndr_lightning.data import VAL_FRACTION
from syndr_lightning.utils.errors import ConfigError, DatasetError, InputError
from syndr_lightning.utils.io import atomic_open

#: 0-based KADID-10k reference ids left out of the 74-reference cross-dataset training
#: set (1-based: 6, 7, 18, 19, 53, 58, 70).
KADID_CROSS_EXCLUDE: tuple[int, ...] = (5, 6, 17, 18, 52, 57, 69)

#: Number of KADID-10k references and distortion types.
KADID_N_REFS = 81
KADID_N_TYPES = 25

_ALL_TYPES: tuple[int, ...] = tuple(range(1, KADID_N_TYPES + 1))

#: Target dataset -> KADID distortion types used for training (DGQA's table).
DGQA_SUBSETS: dict[str, tuple[int, ...]] = {
    "livec": (1, 3, 10, 17, 18, 25),
    "koniq10k": (1, 3, 16, 17, 18, 25),
    "bid": (1, 3, 9, 21, 23, 25),
    "pipal1": (1, 2, 3, 9, 17, 18, 25),
    "pipal2": (1, 2, 3, 9, 17, 23),
    "pipal3": (1, 3, 16, 17, 18, 19, 25),
    "pipal4": (1, 3, 7, 9, 10, 17, 18, 25),
    "pipal5": (1, 2, 3, 4, 9),
    "pipal6": (1, 2, 3, 9, 10, 11, 12, 16, 17, 18, 19, 21, 22, 25),
    "live": _ALL_TYPES,
    "csiq": _ALL_TYPES,
    "tid2013": _ALL_TYPES,
    "kadid10k": _ALL_TYPES,
    "all": _ALL_TYPES,
}

SPLIT_FILE_VERSION = 1


def resolve_types(types: str | int | Iterable[int] | None) -> tuple[int, ...]:
    """Turn a DGQA_SUBSETS name, ``None``/"all" or a list of ints into sorted KADID types."""
    if types is None:
        return _ALL_TYPES
    if isinstance(types, str):
        key = types.strip().lower().replace("-", "").replace("_", "")
        aliases = {"koniq": "koniq10k", "kadid": "kadid10k", "livechallenge": "livec"}
        key = aliases.get(key, key)
        if key not in DGQA_SUBSETS:
            raise ConfigError(
                f"unknown distortion-type subset {types!r}; expected one of "
                f"{sorted(DGQA_SUBSETS)} or a list of KADID type ids 1..{KADID_N_TYPES}"
            )
        return DGQA_SUBSETS[key]
    values = [types] if isinstance(types, int) else list(types)
    out: list[int] = []
    for t in values:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise ConfigError(f"distortion types must be ints 1..{KADID_N_TYPES}; got {t!r}")
        if not 1 <= int(t) <= KADID_N_TYPES:
            raise ConfigError(f"distortion type {int(t)} outside 1..{KADID_N_TYPES}")
        out.append(int(t))
    if not out:
        raise ConfigError("the distortion-type list is empty; give at least one type 1..25")
    return tuple(sorted(set(out)))


def kadid_ref_name(index: int) -> str:
    """KADID reference name (``I01`` ...) of the 0-based reference ``index``."""
    return f"I{index + 1:02d}"


def resolve_kadid_refs(refs: str | Iterable[int | str] | None) -> tuple[str, ...]:
    """Turn ``"all"``, ``"cross74"`` or a list (0-based ints or names ``I01``) into names."""
    if refs is None or (isinstance(refs, str) and refs.lower() == "all"):
        return tuple(kadid_ref_name(i) for i in range(KADID_N_REFS))
    if isinstance(refs, str):
        if refs.lower() in ("cross74", "cross"):
            return tuple(
                kadid_ref_name(i) for i in range(KADID_N_REFS) if i not in KADID_CROSS_EXCLUDE
            )
        raise ConfigError(
            f"unknown KADID reference selection {refs!r}; expected 'all', 'cross74' or a "
            f"list of 0-based reference ids (0..80) or names ('I01'..'I81')"
        )
    out: list[str] = []
    for r in refs:
        if isinstance(r, (int, np.integer)) and not isinstance(r, bool):
            if not 0 <= int(r) < KADID_N_REFS:
                raise ConfigError(f"KADID reference id {int(r)} outside 0..{KADID_N_REFS - 1}")
            out.append(kadid_ref_name(int(r)))
        elif isinstance(r, str) and r.upper().startswith("I") and r[1:].isdigit():
            out.append(f"I{int(r[1:]):02d}")
        else:
            raise ConfigError(
                f"KADID reference {r!r} is neither a 0-based id nor a name like 'I01'"
            )
    if not out:
        raise ConfigError("the KADID reference list is empty")
    return tuple(sorted(set(out)))


def _counts(n: int, val_fraction: float, test_fraction: float, unit: str) -> tuple[int, int]:
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ConfigError(f"{name} must lie in [0, 1); got {frac}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction + test_fraction must be < 1 (got {val_fraction} + {test_fraction}); "
            f"nothing would be left for training"
        )
    n_val = round(n * val_fraction) if val_fraction > 0 else 0
    n_test = round(n * test_fraction) if test_fraction > 0 else 0
    # a requested side never ends up empty, and training keeps at least one group
    n_val = max(n_val, 1) if val_fraction > 0 else 0
    n_test = max(n_test, 1) if test_fraction > 0 else 0
    if n_val + n_test >= n:
        raise DatasetError(
            f"cannot split {n} {unit}(s) into train/val/test with val_fraction="
            f"{val_fraction}, test_fraction={test_fraction}: each side needs at least one "
            f"{unit}; use more data or smaller fractions"
        )
    return n_val, n_test


def _assign(
    keys: Sequence[str], val_fraction: float, test_fraction: float, seed: int, unit: str
) -> dict[str, str]:
    """Seeded assignment of sorted unique ``keys`` to train/val/test."""
    unique = sorted(set(keys))
    n_val, n_test = _counts(len(unique), val_fraction, test_fraction, unit)
    order = np.random.default_rng(seed).permutation(len(unique))
    out = {}
    for rank, i in enumerate(order):
        out[unique[i]] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return out


def split_by_reference(
    manifest: pd.DataFrame,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
    *,
    test_fraction: float = 0.0,
) -> pd.DataFrame:
    """Return a copy of ``manifest`` with a ``split`` column, splitting by reference.

    Each reference id (column ``ref``) goes wholly to ``train``, ``val`` or ``test``, so
    no content appears on both sides. Intra-dataset 80/20: ``val_fraction=0,
    test_fraction=0.2``.
    """
    _require_rows(manifest)
    if manifest["ref"].isna().any():
        raise DatasetError(
            f"split_by_reference needs a reference id for every image; "
            f"{int(manifest['ref'].isna().sum())} rows of dataset "
            f"{_dataset_name(manifest)!r} have none (authentic set?): use split_by_image"
        )
    refs = manifest["ref"].astype(str)
    assign = _assign(list(refs), val_fraction, test_fraction, seed, "reference")
    out = manifest.copy()
    out["split"] = refs.map(assign).to_numpy()
    return out


def split_by_image(
    manifest: pd.DataFrame,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
    *,
    test_fraction: float = 0.0,
) -> pd.DataFrame:
    """Return a copy of ``manifest`` with a ``split`` column, splitting image by image."""
    _require_rows(manifest)
    keys = _image_keys(manifest)
    if len(set(keys)) != len(keys):
        raise DatasetError("split_by_image: the manifest lists some image path twice")
    assign = _assign(keys, val_fraction, test_fraction, seed, "image")
    out = manifest.copy()
    out["split"] = [assign[k] for k in keys]
    return out


def split_auto(
    manifest: pd.DataFrame,
    val_fraction: float = 0.0,
    seed: int = 0,
    *,
    test_fraction: float = 0.2,
) -> pd.DataFrame:
    """Split by reference when every row has one, else by image (intra-dataset default)."""
    if manifest["ref"].notna().all():
        return split_by_reference(manifest, val_fraction, seed, test_fraction=test_fraction)
    return split_by_image(manifest, val_fraction, seed, test_fraction=test_fraction)


def save_split(manifest: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the ``split`` column of ``manifest`` to a JSON split file (atomically).

    The file records which references (when the split is by reference) or which image
    paths (relative to their common folder) go to which side.
    """
    if "split" not in manifest.columns:
        raise InputError(
            "save_split: the manifest has no 'split' column; call split_by_reference or "
            "split_by_image first"
        )
    _require_rows(manifest)
    by_ref = _split_is_by_reference(manifest)
    if by_ref:
        keys = manifest["ref"].astype(str)
        assign = dict(zip(keys, manifest["split"].astype(str), strict=True))
        kind = "reference"
    else:
        keys = pd.Series(_image_keys(manifest))
        assign = dict(zip(keys, manifest["split"].astype(str), strict=True))
        kind = "image"
    payload: dict[str, Any] = {
        "version": SPLIT_FILE_VERSION,
        "kind": kind,
        "dataset": _dataset_name(manifest),
        "n_images": len(manifest),
        "counts": {s: int((manifest["split"] == s).sum()) for s in ("train", "val", "test")},
        "assign": dict(sorted(assign.items())),
    }
    final = Path(path)
    with atomic_open(final, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1)
        fh.write("\n")
    return final


def load_split(manifest: pd.DataFrame, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Return ``manifest`` with the ``split`` column recorded in split file ``path``.

    Raises DatasetError when the file is missing or malformed, or does not match the
    data (different dataset, references or images), saying what differs.
    """
    file = Path(path)
    if not file.is_file():
        raise DatasetError(
            f"split file {str(file)!r} does not exist; create it with save_split (or drop "
            f"the split-file option to split afresh)"
        )
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"split file {str(file)!r} is not valid JSON: {exc}") from None
    if (
        not isinstance(payload, dict)
        or payload.get("kind") not in ("reference", "image")
        or not isinstance(payload.get("assign"), dict)
    ):
        raise DatasetError(
            f"split file {str(file)!r} is not a syndr split file (expected keys 'kind' = "
            f"reference|image and 'assign'); was it written by save_split?"
        )
    bad_sides = sorted({v for v in payload["assign"].values()} - {"train", "val", "test"})
    if bad_sides:
        raise DatasetError(
            f"split file {str(file)!r} assigns to unknown sides {bad_sides}; expected "
            f"train/val/test"
        )
    _require_rows(manifest)
    dataset = _dataset_name(manifest)
    if payload.get("dataset") not in (None, dataset):
        raise DatasetError(
            f"split file {str(file)!r} was made for dataset {payload['dataset']!r} but the "
            f"data are {dataset!r}"
        )
    if payload["kind"] == "reference":
        if manifest["ref"].isna().any():
            raise DatasetError(
                f"split file {str(file)!r} splits by reference but the data have images "
                f"without a reference id"
            )
        keys = list(manifest["ref"].astype(str))
        unit = "references"
    else:
        keys = _image_keys(manifest)
        unit = "images"
    assign: dict[str, str] = payload["assign"]
    have, want = set(keys), set(assign)
    if have != want:
        only_data = sorted(have - want)
        only_file = sorted(want - have)
        parts = []
        if only_data:
            parts.append(f"{len(only_data)} {unit} in the data are not in the file {only_data[:3]}")
        if only_file:
            parts.append(f"{len(only_file)} {unit} in the file are not in the data {only_file[:3]}")
        raise DatasetError(
            f"split file {str(file)!r} does not match the data: {'; '.join(parts)}; use the "
            f"same dataset and options it was made with, or make a new split"
        )
    out = manifest.copy()
    out["split"] = [assign[k] for k in keys]
    return out


def _require_rows(manifest: pd.DataFrame) -> None:
    for col in ("path", "ref"):
        if col not in manifest.columns:
            raise DatasetError(f"manifest lacks column {col!r}; expected a data.manifest table")
    if len(manifest) == 0:
        raise DatasetError("cannot split an empty manifest: no images were loaded")


def _dataset_name(manifest: pd.DataFrame) -> str:
    if "dataset" not in manifest.columns:
        return "unknown"
    names = sorted(set(manifest["dataset"].astype(str)))
    return "+".join(names)


def _image_keys(manifest: pd.DataFrame) -> list[str]:
    """Image paths relative to their common folder, POSIX style (portable across roots)."""
    paths = [os.path.abspath(str(p)) for p in manifest["path"]]
    if len(paths) == 1:
        return [Path(paths[0]).name]
    common = os.path.commonpath(paths)
    return [Path(os.path.relpath(p, common)).as_posix() for p in paths]


def _split_is_by_reference(manifest: pd.DataFrame) -> bool:
    """True when every reference falls on exactly one side."""
    if manifest["ref"].isna().any():
        return False
    sides = manifest.groupby(manifest["ref"].astype(str))["split"].nunique()
    return bool((sides == 1).all()) and manifest["ref"].nunique() < len(manifest)
