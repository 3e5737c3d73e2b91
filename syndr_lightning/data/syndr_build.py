"""SynDR's data build steps as plain functions (no Lightning): label scaling and DDCUp's
upsampled set.

:class:`~syndr_lightning.data.syndr.SynDRDataModule` calls them from its hooks; each
takes the validated objects (``DataProtocol``, ``DDCUpParams``) whole. See docs/syndr.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syndr_lightning.data.datasets import get_loader
from syndr_lightning.data.facts import PoolFacts
from syndr_lightning.data.paper_protocol import POOL_FILE, DataProtocol, draw_pool, minmax_scores
from syndr_lightning.data.upsample import UpsampledSet, UpsampleSpec, build_upsampled_set
from syndr_lightning.reshape.params import (
    DDCUpParams,
    ReshapeParams,
)
from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.signals import sigterm_as_preempted


@dataclass(frozen=True)
class LabelScaling:
    """The authors' label scaling: raw labels min-maxed to 0..10 over ``[lo, hi]`` (every
    reference x the training types); with ``per_epoch`` (DRCDown on) again over each
    epoch's kept originals (without DRCDown nothing is dropped and the labels stay on the
    every-reference scale)."""

    lo: float
    hi: float
    higher_is_better: bool
    n_types: int
    per_epoch: bool = True

    def apply(self, part: pd.DataFrame | None) -> pd.DataFrame | None:
        """``part`` with its ``score`` column scaled from ``raw_score`` (None stays None)."""
        if part is None:
            return None
        out = part.copy()
        out["score"] = minmax_scores(part["raw_score"], self.lo, self.hi, self.higher_is_better)
        return out

    def describe(self) -> str:
        """The ``label_scaling`` line of the run report."""
        again = "; again over each epoch's kept originals" if self.per_epoch else ""
        return (
            f"authors (0..10 over all refs x {self.n_types} types, raw {self.lo:.4g}.."
            f"{self.hi:.4g}{again})"
        )


@dataclass(frozen=True)
class DDCUpBuild:
    """DDCUp's result for one run: the upsampled set and the facts of its data."""

    upsampled: UpsampledSet
    n_refs: int
    pool: PoolFacts
    pool_names: tuple[str, ...]  # listed in candidate_pool.txt of the run folder


def check_inputs(
    reshape: ReshapeParams, candidates: Any, predistorted: Any, cache_dir: str | None
) -> None:
    """DDCUp needs candidates (or the predistorted folder) and a folder for its set."""
    if reshape.ddcup and not candidates and not predistorted:
        raise ConfigError(
            "reshape.ddcup=true needs data.candidates (e.g. {name: kadis700k, root: "
            "${paths.data_dir}/kadis700k}) or data.predistorted (a kadid_add81 folder); "
            "set reshape.ddcup=false to train without upsampling"
        )
    if reshape.ddcup and not cache_dir:
        raise ConfigError(
            "reshape.ddcup=true needs data.upsample_cache_dir (or data.cache_dir): a "
            "writable folder where the upsampled set is built once and reused"
        )


def check_workers(gendist_workers: Any) -> None:
    """GenDist's worker processes: an integer >= 0."""
    if int(gendist_workers) < 0:
        raise ConfigError(f"data.gendist_workers must be >= 0, got {gendist_workers!r}")


def check_reload(reload_every: int, max_epochs: int | None) -> None:
    """DRCDown's subset reaches training only if the loader is rebuilt every epoch."""
    if int(reload_every) != 1 and max_epochs != 1:
        raise ConfigError(
            f"reshape.drcdown=true needs trainer.reload_dataloaders_every_n_epochs=1 (found "
            f"{reload_every}): the train loader must be rebuilt every epoch to serve that "
            f"epoch's DRCDown subset"
        )


def _loader(entry: Mapping[str, Any], **options: Any) -> Any:
    return get_loader(str(entry["name"]))(str(entry["root"]), **options)


def _references(loader: Any, what: str) -> dict[str, Path]:
    refs = getattr(loader, "references", None)  # optional loader capability
    if refs is None:
        raise ConfigError(what)
    return {str(k): Path(v) for k, v in refs().items()}


def all_references_manifest(train_entry: Mapping[str, Any], whole_file: bool) -> pd.DataFrame:
    """Every reference of the training dataset (``refs: all``); with ``whole_file`` also
    every distortion type (the whole label file)."""
    from syndr_lightning.data.datamodule import load_entry

    options = dict(train_entry["options"])
    if "refs" not in options:
        raise ConfigError(
            f"data.ddcup_reference_set=all and data.label_scaling=authors need a training "
            f"set with a `refs` option (kadid10k); {train_entry['name']!r} has none: use "
            f"data.ddcup_reference_set=train data.label_scaling=dataset"
        )
    options["refs"] = "all"
    if whole_file:
        options["types"] = None
    return load_entry({**train_entry, "options": options}, "data.train")


def authors_scaling(
    train_entry: Mapping[str, Any], train: pd.DataFrame | None, per_epoch: bool = True
) -> LabelScaling:
    """The authors' scaling of ``train_entry``'s labels (``data.label_scaling=authors``)."""
    raw = all_references_manifest(train_entry, whole_file=False)["raw_score"]
    values = raw.to_numpy(dtype=np.float64)
    info = get_loader(str(train_entry["name"])).info
    return LabelScaling(
        lo=float(np.nanmin(values)),
        hi=float(np.nanmax(values)),
        higher_is_better=info.higher_is_better_raw,
        n_types=0 if train is None else int(train["dist_type"].dropna().nunique()),
        per_epoch=per_epoch,
    )


def training_references(train_entry: Mapping[str, Any], all_refs: bool = False) -> dict[str, Path]:
    """The training set's pristine references (ref id -> image)."""
    options = dict(train_entry["options"], **({"refs": "all"} if all_refs else {}))
    found = _references(
        _loader(train_entry, **options),
        f"reshape.ddcup=true needs the training set's pristine references, but loader "
        f"{train_entry['name']!r} has no references(); use kadid10k or set reshape.ddcup=false",
    )
    if len(found) < 2:  # say what is missing and that DRCDown alone would run
        raise ConfigError(
            f"reshape.ddcup=true needs the pristine reference image of at least 2 training "
            f"references, found {len(found)} for data.train ({train_entry['name']!r}); for a "
            f"csv add a column ref_path (each row's reference image) or set "
            f"data.train.options.refs_dir=<folder with <ref>.png>, and a ref column; or run "
            f"DRCDown alone: reshape.ddcup=false"
        )
    return found


def candidate_images(candidates: Mapping[str, Any]) -> dict[str, Path]:
    """``data.candidates``: a loader with ``references()`` or (``name: folder``) a folder."""
    from syndr_lightning.data.upsample import list_images

    name = str(candidates.get("name", "folder"))
    root = candidates.get("root")
    if not root:
        raise ConfigError("data.candidates.root is missing; point it at the candidate pool")
    # The built-in generated pool (name: synthetic) creates its folder itself.
    if name != "synthetic" and not Path(str(root)).expanduser().exists():
        raise DatasetError(
            f"data.candidates.root={str(root)!r} does not exist; download KADIS-700k (or "
            f"put any pristine images) there or set data.candidates.root"
        )
    if name == "folder":
        return list_images(Path(str(root)).expanduser())
    loader = _loader({"name": name, "root": root}, **dict(candidates.get("options") or {}))
    return _references(
        loader,
        f"data.candidates.name={name!r} cannot list reference images; use kadis700k or folder",
    )


def ddcup_reference(
    train_entry: Mapping[str, Any], train: pd.DataFrame, held: set[str], reference_set: str
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """DDCUp's reference set: (manifest with the labels, ref id -> pristine image).

    ``all``: every reference of the dataset except ``held`` (validation / test refs),
    labels of the whole label file (the authors); ``train``: the training manifest.
    """
    if reference_set == "train":
        return train, training_references(train_entry)
    full = all_references_manifest(train_entry, whole_file=True)
    manifest = full[~full["ref"].astype(str).isin(held)].reset_index(drop=True)
    refs = {k: v for k, v in training_references(train_entry, True).items() if k not in held}
    return manifest, refs


def build_ddcup(
    train_entry: Mapping[str, Any],
    train: pd.DataFrame,
    held: set[str],
    params: DDCUpParams,
    protocol: DataProtocol,
    source: Mapping[str, Any] | str,
    cache_dir: str,
    *,
    seed: int,
    workers: int = 0,
    progress: bool = True,
) -> DDCUpBuild:
    """Build (or reuse) DDCUp's upsampled set; ``source``: ``data.candidates`` or the
    ``data.predistorted`` folder (the reference code's ``kadid_add81``)."""
    types = tuple(sorted(int(t) for t in train["dist_type"].dropna().unique()))
    if not types:
        raise DatasetError(
            "reshape.ddcup=true needs a synthetic training set with distortion types "
            "(e.g. kadid10k); the training manifest has none"
        )
    reference, refs = ddcup_reference(train_entry, train, held, protocol.reference_set)
    n_refs = len(set(reference["ref"].dropna().astype(str)) & set(refs))
    if isinstance(source, str):
        from syndr_lightning.data.upsample import predistorted_candidates

        names = tuple(sorted(predistorted_candidates(source)[0]))
        pool_facts = PoolFacts(
            len(names), "predistorted", protocol.pool_seed, len(names), POOL_FILE
        )
        pool: dict[str, Path] = {}
    else:
        every = candidate_images(source)
        pool = draw_pool(every, protocol.pool_size, n_refs, protocol.pool_seed)
        names = tuple(pool)
        pool_facts = PoolFacts(
            len(pool), str(protocol.pool_size), protocol.pool_seed, len(every), POOL_FILE
        )
    with sigterm_as_preempted("building DDCUp's upsampled set"):  # before Lightning's handler
        upsampled = build_upsampled_set(
            reference,
            refs,
            pool,
            cache_dir,
            UpsampleSpec(types, params, seed),
            predistorted=source if isinstance(source, str) else None,
            workers=workers,
            feature_cache_dir=str(Path(cache_dir) / "ref_features"),
            progress=progress,
        )
    return DDCUpBuild(upsampled, n_refs, pool_facts, names)
