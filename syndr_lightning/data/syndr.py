"""SynDR-IQA's training data: DDCUp's upsampled set once, DRCDown's subset every epoch.

:class:`SynDRDataModule` extends :class:`~syndr_lightning.data.datamodule.IQADataModule`:

* train = the original samples DRCDown keeps this epoch + every upsampled sample (as
  the reference code does; ``drcdown_on_upsampled=true`` applies DRCDown to both);
* val = held-out references of the training set (``val_fraction``, by reference);
* test = one or more target datasets, each logged under its own label.

The upsampled set is built once by :func:`build_upsampled_set` (``data/upsample.py``)
in ``prepare_data`` and read back from its cache in ``setup``. The per-epoch subset is
computed lazily in :meth:`SynDRDataModule.train_indices`, which ``train_dataloader()``
calls when Lightning rebuilds the loader at the start of each epoch: the model is then
exactly in its start-of-epoch state and the batch count is right. See docs/syndr.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader, Subset

from syndr_lightning.data.datamodule import IQADataModule
from syndr_lightning.data.datasets import get_loader
from syndr_lightning.data.protocol import (
    LABEL_SCALINGS,
    POOL_FILE,
    REFERENCE_SETS,
    draw_pool,
    minmax_scores,
    rescale_rows,
    write_name_list,
)
from syndr_lightning.data.sampler import EpochSampler, WorkerSeeder
from syndr_lightning.data.upsample import (
    UpsampledSet,
    UpsampleSpec,
    build_upsampled_set,
    list_images,
)
from syndr_lightning.protocol import Protocol
from syndr_lightning.reshape.engine import (
    DRCDownSelector,
    EpochSubset,
)
from syndr_lightning.reshape.params import FeaturePassParams, ReshapeParams
from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.io import atomic_open

log = logging.getLogger(__name__)

__all__ = ["SynDRDataModule", "build_upsampled_set"]


def _progress_host(trainer: Any) -> Any:
    """Global rank 0 shows the feature pass: as a row of Lightning's live rich bar when
    there is one (never a second live display), else as its own bar; other ranks: none."""
    if not trainer.is_global_zero:
        return False
    bar = getattr(trainer, "progress_bar_callback", None)
    return trainer if bar is not None else False


class SynDRDataModule(IQADataModule):
    """IQADataModule + DDCUp (upsampled set, built once) + DRCDown (subset per epoch).

    Extra arguments over :class:`IQADataModule`:

    - ``reshape``: a :class:`~syndr_lightning.reshape.params.ReshapeParams` or the
      ``reshape`` config mapping it is built from (``ddcup``, ``drcdown``, ``k``,
      ``T_ref``, ``T_q``, ``T_f``, ``T_u``, ``weights``, ``temperature``, ``rule``,
      ``backend``, ``levels``, ``encoder``, ``encoder_weights``, ``encoder_crop``).
    - ``candidates``: a dataset entry ``{name, root, options}`` whose loader has
      ``references()`` (``kadis700k``) or, with ``name: folder``, any folder of images.
    - ``predistorted``: the reference code's ``kadid_add81`` folder (``ref_imgs/``,
      ``dist_imgs/<ref>_<TT>_<LL>.bmp``); replaces ``candidates`` and GenDist.
    - ``upsample_cache_dir``: where built sets live (default ``cache_dir``).
    - ``drcdown_on_upsampled``: apply DRCDown to original + upsampled samples.
    - ``feature_pass``: DRCDown feature-pass settings (``crop_size`` default the
      training crop, ``resize``, ``batch_size``, ``num_workers``, ``half``, ``cache``).
    - ``reseed_every_epoch``: an epoch's shuffling, crops and flips depend on (seed,
      epoch) only (:class:`EpochSampler`), so resuming repeats an uninterrupted run.
    - ``gendist_workers``: CPU worker processes of GenDist.
    - ``candidate_pool``: ``{size, seed}``; ``size`` = ``refset`` (as many candidates as
      DDCUp's reference set: the paper), ``all`` or an integer; a seeded draw from
      ``candidates``, listed in ``candidate_pool.txt`` (upsampled set and run folder).
    - ``ddcup_reference_set``: ``all`` (every reference of the training dataset not held
      out for evaluation, labels from the whole label file: the authors) or ``train``.
    - ``label_scaling``: ``authors`` (0..10 over every reference x the training types,
      again over each epoch's kept original samples) or ``dataset`` (the loader's
      whole-file scaling).
    """

    def __init__(
        self,
        train: Mapping[str, Any],
        test: Sequence[Mapping[str, Any]] | None = None,
        val: Mapping[str, Any] | None = None,
        *,
        reshape: ReshapeParams | Mapping[str, Any] | None = None,
        candidates: Mapping[str, Any] | None = None,
        predistorted: str | None = None,
        upsample_cache_dir: str | None = None,
        drcdown_on_upsampled: bool = False,
        feature_pass: FeaturePassParams | Mapping[str, Any] | None = None,
        reseed_every_epoch: bool = True,
        gendist_workers: int = 0,
        candidate_pool: Mapping[str, Any] | None = None,
        ddcup_reference_set: str = "train",
        label_scaling: str = "dataset",
        **kwargs: Any,
    ) -> None:
        super().__init__(train, test, val, **kwargs)
        self._init_protocol(candidate_pool, ddcup_reference_set, label_scaling)
        self.reshape = ReshapeParams.from_config(reshape)
        self.ddcup = self.reshape.ddcup
        self.drcdown = self.reshape.drcdown
        self.candidates = dict(candidates) if candidates else None
        self.predistorted = predistorted
        if self.ddcup and self.candidates is None and not predistorted:
            raise ConfigError(
                "reshape.ddcup=true needs data.candidates (e.g. {name: kadis700k, root: "
                "${paths.data_dir}/kadis700k}) or data.predistorted (a kadid_add81 folder); "
                "set reshape.ddcup=false to train without upsampling"
            )
        self.upsample_cache_dir = upsample_cache_dir or self.cache_dir
        if self.ddcup and not self.upsample_cache_dir:
            raise ConfigError(
                "reshape.ddcup=true needs data.upsample_cache_dir (or data.cache_dir): a "
                "writable folder where the upsampled set is built once and reused"
            )
        self.drcdown_on_upsampled = bool(drcdown_on_upsampled)
        fp = FeaturePassParams.from_config(feature_pass)
        # the feature pass crops like training unless told otherwise
        self.feature_pass = replace(fp, crop_size=fp.crop_size or self.crop_size)
        self.reseed_every_epoch = bool(reseed_every_epoch)
        if int(gendist_workers) < 0:
            raise ConfigError(f"data.gendist_workers must be >= 0, got {gendist_workers!r}")
        self.gendist_workers = int(gendist_workers)
        self.drcdown_params = self.reshape.drcdown_params
        self.feature_cache_dir = self._feature_cache_dir(self.feature_pass.cache)
        self.upsampled: UpsampledSet | None = None
        self.n_original = 0
        self.drcdown_selector: DRCDownSelector | None = None
        self._pool = np.zeros(0, dtype=np.int64)
        self._always = np.zeros(0, dtype=np.int64)

    def _init_protocol(
        self, candidate_pool: Mapping[str, Any] | None, reference_set: str, label_scaling: str
    ) -> None:
        """Validate and store the paper-protocol switches (see the class docstring)."""
        pool = dict(candidate_pool or {})
        unknown = sorted(set(pool) - {"size", "seed"})
        if unknown:
            raise ConfigError(
                f"data.candidate_pool has unknown keys {unknown}; allowed: size (refset | all "
                f"| an integer), seed"
            )
        self.pool_size: Any = pool.get("size", "all")
        self.pool_seed = int(pool.get("seed", 0))
        if reference_set not in REFERENCE_SETS:
            raise ConfigError(
                f"data.ddcup_reference_set={reference_set!r} is unknown; allowed values: "
                f"{', '.join(REFERENCE_SETS)}"
            )
        if label_scaling not in LABEL_SCALINGS:
            raise ConfigError(
                f"data.label_scaling={label_scaling!r} is unknown; allowed values: "
                f"{', '.join(LABEL_SCALINGS)}"
            )
        self.ddcup_reference_set = reference_set
        self.label_scaling = label_scaling
        self.label_range: tuple[float, float] | None = None
        self.n_ddcup_refs = 0
        self.pool_names: list[str] = []
        self.n_candidate_source = 0
        #: Facts the training script adds (weights loaded, selection rule).
        self.protocol_extra: dict[str, Any] = {}
        self._all_refs_cache: dict[str, pd.DataFrame] = {}

    def _feature_cache_dir(self, enabled: Any) -> str | None:
        if not enabled or not self.cache_dir:
            return None
        return str(Path(self.cache_dir) / "drcdown_crops")

    # ------------------------------------------------------------- DDCUp
    def upsample_spec(self, train: pd.DataFrame) -> UpsampleSpec:
        """The DDCUp settings for ``train`` (types = the training set's types)."""
        types = tuple(sorted(int(t) for t in train["dist_type"].dropna().unique()))
        if not types:
            raise DatasetError(
                "reshape.ddcup=true needs a synthetic training set with distortion types "
                "(e.g. kadid10k); the training manifest has none"
            )
        return UpsampleSpec.from_params(types, self.reshape.ddcup_params, self.seed)

    def _training_refs(self, all_refs: bool = False) -> dict[str, Path]:
        loader_cls = get_loader(str(self.train_entry["name"]))
        options = dict(self.train_entry["options"])
        if all_refs:
            options["refs"] = "all"
        loader = loader_cls(str(self.train_entry["root"]), **options)
        refs = getattr(loader, "references", None)
        if refs is None:
            raise ConfigError(
                f"reshape.ddcup=true needs the training set's pristine references, but "
                f"loader {self.train_entry['name']!r} has no references(); use kadid10k "
                f"or set reshape.ddcup=false"
            )
        found = {str(k): Path(v) for k, v in refs().items()}
        if len(found) < 2:  # i24: say what is missing and that DRCDown alone would run
            raise ConfigError(
                f"reshape.ddcup=true needs the pristine reference image of at least 2 training "
                f"references, found {len(found)} for data.train ({self.train_entry['name']!r}); "
                f"for a csv add a column ref_path (each row's reference image) or set "
                f"data.train.options.refs_dir=<folder with <ref>.png>, and a ref column; or "
                f"run DRCDown alone: reshape.ddcup=false"
            )
        return found

    def _candidate_images(self) -> dict[str, Path]:
        assert self.candidates is not None
        name = str(self.candidates.get("name", "folder"))
        root = self.candidates.get("root")
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
        loader_cls = get_loader(name)
        loader = loader_cls(str(root), **dict(self.candidates.get("options") or {}))
        refs = getattr(loader, "references", None)
        if refs is None:
            raise ConfigError(
                f"data.candidates.name={name!r} cannot list reference images; use kadis700k "
                f"or folder"
            )
        return {str(k): Path(v) for k, v in refs().items()}

    def _all_references_manifest(self, whole_file: bool) -> pd.DataFrame:
        """Every reference of the training dataset (``refs: all``); with ``whole_file``
        also every distortion type (the whole label file)."""
        name = str(self.train_entry["name"])
        options = dict(self.train_entry["options"])
        if "refs" not in options:
            raise ConfigError(
                f"data.ddcup_reference_set=all and data.label_scaling=authors need a "
                f"training set with a `refs` option (kadid10k); {name!r} has none: use "
                f"data.ddcup_reference_set=train data.label_scaling=dataset"
            )
        options["refs"] = "all"
        if whole_file:
            options["types"] = None
        key = repr(sorted(options.items()))
        if key not in self._all_refs_cache:
            from syndr_lightning.data.datamodule import load_entry

            entry = {**self.train_entry, "options": options}
            self._all_refs_cache[key] = load_entry(entry, "data.train")
        return self._all_refs_cache[key]

    def ddcup_reference(self) -> tuple[pd.DataFrame, dict[str, Path]]:
        """DDCUp's reference set: (manifest with the labels, ref id -> pristine image).

        ``all``: every reference of the dataset except those held out for validation or
        testing, labels of the whole label file (the authors: 81 KADID-10k references);
        ``train``: the training manifest.
        """
        train = self._load_train()
        if self.ddcup_reference_set == "train":
            return train, self._training_refs()
        full = self._all_references_manifest(whole_file=True)
        held = set()
        for part in (self.val_manifest, self._heldout):
            if part is not None and len(part):
                held |= set(part["ref"].dropna().astype(str))
        manifest = full[~full["ref"].astype(str).isin(held)].reset_index(drop=True)
        refs = {k: v for k, v in self._training_refs(all_refs=True).items() if k not in held}
        return manifest, refs

    def candidate_pool(self, n_reference_set: int) -> dict[str, Path]:
        """DDCUp's candidate pool: a seeded draw of ``data.candidate_pool.size`` candidates."""
        source = self._candidate_images()
        pool = draw_pool(source, self.pool_size, n_reference_set, self.pool_seed)
        self.n_candidate_source = len(source)
        self.pool_names = list(pool)
        return pool

    def build_upsampled(self, progress: bool = True) -> UpsampledSet:
        """Build (or reuse) the upsampled set for the current training split."""
        spec = self.upsample_spec(self._load_train())
        reference, refs = self.ddcup_reference()
        used = set(reference["ref"].dropna().astype(str))
        self.n_ddcup_refs = len(used & set(refs))
        if self.predistorted:
            from syndr_lightning.data.upsample import predistorted_candidates

            self.pool_names = sorted(predistorted_candidates(self.predistorted)[0])
            self.n_candidate_source = len(self.pool_names)
            pool: dict[str, Path] = {}
        else:
            pool = self.candidate_pool(self.n_ddcup_refs)
        assert self.upsample_cache_dir is not None
        return build_upsampled_set(
            reference,
            refs,
            pool,
            self.upsample_cache_dir,
            spec,
            predistorted=self.predistorted,
            workers=self.gendist_workers,
            feature_cache_dir=str(Path(self.upsample_cache_dir) / "ref_features"),
            progress=progress,
        )

    def _derive_train(self, original: pd.DataFrame) -> pd.DataFrame:
        """Rows ``0..n_original-1``: the original samples (``source=original``); then the
        upsampled set (``source=upsampled``), built or read back once."""
        if self.ddcup and self.upsampled is None:
            self.upsampled = self.build_upsampled(progress=False)
        parts = [original.assign(source="original")]
        if self.upsampled is not None and len(self.upsampled.manifest):
            parts.append(self.upsampled.manifest)
        self.n_original = len(original)
        return pd.concat(parts, ignore_index=True)

    def _load_train(self) -> pd.DataFrame:
        """The training split (after label scaling, once)."""
        if self.original_manifest is None:
            super()._load_train()
            if self.label_scaling == "authors":
                self._scale_like_the_authors()
        assert self.original_manifest is not None
        return self.original_manifest

    def _scale_like_the_authors(self) -> None:
        """Min-max the training set's labels (and its val / held-out parts) to 0..10 over
        every reference x the training types, as the reference code does."""
        every = self._all_references_manifest(whole_file=False)
        raw = every["raw_score"].to_numpy(dtype=np.float64)
        lo, hi = float(np.nanmin(raw)), float(np.nanmax(raw))
        info = get_loader(str(self.train_entry["name"])).info
        for attr in ("original_manifest", "val_manifest", "_heldout"):
            part = getattr(self, attr)
            if part is None:
                continue
            part = part.copy()
            part["score"] = minmax_scores(part["raw_score"], lo, hi, info.higher_is_better_raw)
            setattr(self, attr, part)
        self.label_range = (lo, hi)

    # ------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        """Build the upsampled set once (local rank 0); other ranks read the cache.

        Nothing to do once ``setup`` attached the set (``trainer.test`` after ``fit``)."""
        if self.ddcup and self.upsampled is None:
            self.build_upsampled()

    def setup(self, stage: str | None = None) -> None:
        """Load manifests (the training manifest with the upsampled set) and prepare the
        DRCDown selector."""
        super().setup(stage)
        assert self.train_manifest is not None
        n = len(self.train_manifest)
        if self.drcdown:
            pool_n = n if self.drcdown_on_upsampled else self.n_original
            self._pool = np.arange(pool_n, dtype=np.int64)
            self._always = np.arange(pool_n, n, dtype=np.int64)
            pool = self.train_manifest.iloc[:pool_n]
            if self.drcdown_selector is None:
                self.drcdown_selector = DRCDownSelector(
                    list(pool["path"].astype(str)),
                    pool["score"].to_numpy(dtype=np.float64),
                    self.drcdown_params,
                    self.feature_pass,
                    self.seed,
                    self.feature_cache_dir,
                )
            if stage in (None, "fit"):
                self.drcdown_selector.reset()
                self._check_reload()
        if stage in (None, "fit"):
            self._save_protocol()

    def _save_protocol(self) -> None:
        """Print the SynDR protocol and write ``syndr_protocol.json`` (global rank 0)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.is_global_zero:
            return
        info = self.protocol()
        out = Path(trainer.default_root_dir)
        with atomic_open(out / "syndr_protocol.json") as fh:
            json.dump(info, fh, indent=1, default=str)
        if self.pool_names:
            write_name_list(out / POOL_FILE, self.pool_names)
        log.info("SynDR protocol: " + ", ".join(f"{k}={v}" for k, v in info.items()))

    def _check_reload(self) -> None:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return
        if int(trainer.reload_dataloaders_every_n_epochs) != 1 and trainer.max_epochs != 1:
            raise ConfigError(
                f"reshape.drcdown=true needs trainer.reload_dataloaders_every_n_epochs=1 "
                f"(found {trainer.reload_dataloaders_every_n_epochs}): the train loader must "
                f"be rebuilt every epoch to serve that epoch's DRCDown subset"
            )

    # ------------------------------------------------------------- per-epoch subset
    def epoch_subset(self, epoch: int) -> EpochSubset | None:
        """DRCDown's decision for ``epoch`` (computed from the trainer's model on first
        request); ``None`` when DRCDown is off."""
        if not self.drcdown:
            return None
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.lightning_module is None:
            raise ConfigError(
                "DRCDown needs the model: train_indices() with reshape.drcdown=true must be "
                "called while the datamodule is attached to a Trainer (trainer.fit)"
            )
        selector = self.drcdown_selector
        assert selector is not None
        epoch = int(epoch)
        if epoch not in selector.results:
            selector.compute(trainer.lightning_module, epoch, progress=_progress_host(trainer))
        return selector.results[epoch]

    def train_indices(self, epoch: int) -> np.ndarray:
        """Rows of ``train_manifest`` for ``epoch``: DRCDown's kept rows of the pool plus
        every row outside the pool (the upsampled samples, by default)."""
        self._require_setup()
        if not self.drcdown:
            return np.arange(len(self.train_manifest), dtype=np.int64)
        subset = self.epoch_subset(epoch)
        assert subset is not None
        kept = self._pool[subset.kept]
        return np.sort(np.concatenate([kept, self._always]))

    def train_dataloader(self) -> DataLoader:
        """The loader of this epoch's subset, shuffled by an :class:`EpochSampler`.

        Under DDP Lightning wraps the sampler in a distributed sampler: every rank takes
        its share of the same (seed, epoch) order of the same subset.
        """
        epoch = self.current_epoch()
        dataset = self.train_dataset()
        indices = np.asarray(self.train_indices(epoch), dtype=np.int64)
        if indices.ndim != 1 or indices.size == 0:
            raise ConfigError(
                f"the training subset of epoch {epoch} is empty; check the training set "
                f"and the DRCDown thresholds (reshape.T_f, reshape.T_q, reshape.T_u)"
            )
        if self.label_scaling == "authors" and self.drcdown:
            # the reference code scales the kept original labels again every epoch; without
            # DRCDown nothing is dropped and its labels stay on the 81 refs x types scale
            originals = indices[indices < self.n_original]
            dataset.scores = rescale_rows(dataset.scores, originals).astype(np.float32)
        return DataLoader(
            Subset(dataset, indices.tolist()),
            batch_size=self.batch_size,
            sampler=EpochSampler(len(indices), self.seed, epoch, self.reseed_every_epoch),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=False,
            worker_init_fn=WorkerSeeder(self.seed, epoch) if self.reseed_every_epoch else None,
        )

    # ------------------------------------------------------------- checkpoint state
    def state_dict(self) -> dict[str, Any]:
        """The last DRCDown decision (so a run resumed mid-epoch keeps that subset)."""
        sel = self.drcdown_selector
        if sel is None or not sel.results:
            return {}
        last = sel.results[max(sel.results)]
        return {
            "drcdown_epoch": last.epoch,
            "drcdown_kept": last.kept.tolist(),
            "drcdown_total": last.n_total,
            "drcdown_stats": dict(last.stats),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the last DRCDown decision saved in a checkpoint."""
        if not state_dict or "drcdown_epoch" not in state_dict or self.drcdown_selector is None:
            return
        if int(state_dict["drcdown_total"]) != len(self.drcdown_selector.paths):
            raise ConfigError(
                f"the checkpoint's DRCDown pool has {state_dict['drcdown_total']} samples but "
                f"this run's has {len(self.drcdown_selector.paths)}; resume with the same "
                f"data and reshape settings"
            )
        epoch = int(state_dict["drcdown_epoch"])
        self.drcdown_selector.results[epoch] = EpochSubset(
            epoch=epoch,
            kept=np.asarray(state_dict["drcdown_kept"], dtype=np.int64),
            n_total=int(state_dict["drcdown_total"]),
            stats=dict(state_dict.get("drcdown_stats", {})),
        )

    # ------------------------------------------------------------- reporting
    def protocol(self) -> dict[str, Any]:
        """What a results table must state about how this data was used (``Protocol``)."""
        return Protocol.from_datamodule(self, self.seed).to_json()

    def ddcup_facts(self) -> dict[str, Any]:
        """The paper-protocol facts of DDCUp's data and the labels (for ``Protocol``)."""
        scaling = self.label_scaling
        if scaling == "authors" and self.label_range is not None:
            base = self.original_manifest
            n_types = 0 if base is None else int(base["dist_type"].dropna().nunique())
            scaling += (
                f" (0..10 over all refs x {n_types} types, raw {self.label_range[0]:.4g}.."
                f"{self.label_range[1]:.4g}"
                + ("; again over each epoch's kept originals)" if self.drcdown else ")")
            )
        return {
            "ddcup_reference_set": self.ddcup_reference_set if self.ddcup else None,
            "n_ddcup_refs": self.n_ddcup_refs if self.ddcup else None,
            "candidate_pool": (
                {
                    "size": len(self.pool_names),
                    "rule": str(self.pool_size) if not self.predistorted else "predistorted",
                    "seed": self.pool_seed,
                    "source_size": self.n_candidate_source,
                    "file": POOL_FILE,
                }
                if self.ddcup
                else None
            ),
            "encoder_weights": self.reshape.ddcup_params.encoder_weights if self.ddcup else None,
            "label_scaling": scaling,
        }
