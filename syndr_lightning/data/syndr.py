"""SynDR-IQA's training data as a Lightning DataModule (the adapter only).

Train = the original samples DRCDown keeps this epoch + every upsampled sample (as the
reference code does; ``drcdown_on_upsampled=true`` applies DRCDown to both); val =
held-out references of the training set; test = the target datasets, each under its own
label. Build steps: ``data/syndr_build.py``; report facts: typed (:meth:`facts`). The
epoch's subset is computed lazily in :meth:`train_indices`, called when Lightning
rebuilds the loader at the start of each epoch (the model in its start-of-epoch state).
See docs/syndr.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from syndr_lightning.data import syndr_build as build
from syndr_lightning.data.datamodule import IQADataModule
from syndr_lightning.data.facts import DataFacts, SynDRFacts
from syndr_lightning.data.paper_protocol import DataProtocol, rescale_rows
from syndr_lightning.reshape.engine import DRCDownSelector, EpochSubset
from syndr_lightning.reshape.params import FeaturePassParams, ReshapeParams
from syndr_lightning.utils.errors import ConfigError
from syndr_lightning.utils.runchecks import typed

__all__ = ["SynDRDataModule"]


class SynDRDataModule(IQADataModule):
    """IQADataModule + DDCUp (upsampled set, built once) + DRCDown (subset per epoch).

    Extra arguments over :class:`IQADataModule` (the typed objects only, as
    ``RunConfig`` builds them; ``None``: their defaults): ``reshape`` (:class:`ReshapeParams`), ``protocol`` (:class:`DataProtocol`: candidate
    pool, DDCUp's reference set, label scaling), ``feature_pass``
    (:class:`FeaturePassParams`; ``crop_size`` default: the training crop),
    ``candidates`` (``{name, root, options}``: a loader with ``references()`` or
    ``name: folder``), ``predistorted`` (the reference code's ``kadid_add81`` folder,
    replacing ``candidates`` and GenDist), ``upsample_cache_dir`` (default
    ``cache_dir``), ``drcdown_on_upsampled``, ``reseed_every_epoch`` (order, crops and
    flips a function of (seed, epoch): resuming repeats an uninterrupted run),
    ``gendist_workers`` (GenDist's CPU processes).
    """

    def __init__(
        self,
        train: Mapping[str, Any],
        test: Sequence[Mapping[str, Any]] | None = None,
        val: Mapping[str, Any] | None = None,
        *,
        reshape: ReshapeParams | None = None,
        protocol: DataProtocol | None = None,
        candidates: Mapping[str, Any] | None = None,
        predistorted: str | None = None,
        upsample_cache_dir: str | None = None,
        drcdown_on_upsampled: bool = False,
        feature_pass: FeaturePassParams | None = None,
        reseed_every_epoch: bool = True,
        gendist_workers: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(train, test, val, **kwargs)
        self.reshape = typed(reshape, ReshapeParams, "SynDRDataModule(reshape=...)")
        self.protocol = typed(protocol, DataProtocol, "SynDRDataModule(protocol=...)")
        self.candidates = dict(candidates) if candidates else None
        self.predistorted = predistorted
        self.upsample_cache_dir = upsample_cache_dir or self.cache_dir
        build.check_inputs(self.reshape, candidates, predistorted, self.upsample_cache_dir)
        build.check_workers(gendist_workers)
        self.drcdown_on_upsampled = bool(drcdown_on_upsampled)
        fp = typed(feature_pass, FeaturePassParams, "SynDRDataModule(feature_pass=...)")
        # the feature pass crops like training unless told otherwise
        self.feature_pass = replace(fp, crop_size=fp.crop_size or self.crop_size)
        self.reseed_every_epoch = bool(reseed_every_epoch)
        self.gendist_workers = int(gendist_workers)
        self.scaling: build.LabelScaling | None = None
        self.ddcup_build: build.DDCUpBuild | None = None
        self.drcdown_selector: DRCDownSelector | None = None
        self.n_original = 0
        self._pool = np.zeros(0, dtype=np.int64)
        self._always = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------- build steps
    def _load_train(self) -> pd.DataFrame:
        """The training split (after the authors' label scaling, once)."""
        if self.original_manifest is None:
            super()._load_train()
            if self.protocol.label_scaling == "authors":
                parts = (self.original_manifest, self.val_manifest, self._heldout)
                scaling = build.authors_scaling(self.train_entry, parts[0], self.reshape.drcdown)
                self.original_manifest, self.val_manifest, self._heldout = map(scaling.apply, parts)
                self.scaling = scaling
        assert self.original_manifest is not None
        return self.original_manifest

    def build_upsampled(self, progress: bool = True) -> build.DDCUpBuild:
        """Build (or reuse) DDCUp's upsampled set for the current training split."""
        train = self._load_train()
        held = {
            str(r)
            for part in (self.val_manifest, self._heldout)
            if part is not None
            for r in part["ref"].dropna()
        }
        source = self.predistorted or self.candidates
        assert source is not None and self.upsample_cache_dir is not None
        return build.build_ddcup(
            self.train_entry,
            train,
            held,
            self.reshape.ddcup_params,
            self.protocol,
            source,
            self.upsample_cache_dir,
            seed=self.seed,
            workers=self.gendist_workers,
            progress=progress,
        )

    def _derive_train(self, original: pd.DataFrame) -> pd.DataFrame:
        """Rows ``0..n_original-1``: the originals; then the upsampled set (built once)."""
        if self.reshape.ddcup and self.ddcup_build is None:
            self.ddcup_build = self.build_upsampled(progress=False)
        parts = [original.assign(source="original")]
        if self.ddcup_build is not None and len(self.ddcup_build.upsampled.manifest):
            parts.append(self.ddcup_build.upsampled.manifest)
        self.n_original = len(original)
        return pd.concat(parts, ignore_index=True)

    # ------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        """Build the upsampled set once (local rank 0); other ranks read the cache."""
        if self.reshape.ddcup and self.ddcup_build is None:
            self.ddcup_build = self.build_upsampled()

    def setup(self, stage: str | None = None) -> None:
        """Load manifests (training: with the upsampled set); build the DRCDown selector."""
        super().setup(stage)
        assert self.train_manifest is not None
        if not self.reshape.drcdown:
            return
        n = len(self.train_manifest)
        pool_n = n if self.drcdown_on_upsampled else self.n_original
        self._pool = np.arange(pool_n, dtype=np.int64)
        self._always = np.arange(pool_n, n, dtype=np.int64)
        if self.drcdown_selector is None:
            pool, crops = self.train_manifest.iloc[:pool_n], Path(str(self.cache_dir))
            self.drcdown_selector = DRCDownSelector(
                list(pool["path"].astype(str)),
                pool["score"].to_numpy(dtype=np.float64),
                self.reshape.drcdown_params,
                self.feature_pass,
                self.seed,
                str(crops / "drcdown_crops")
                if self.cache_dir and self.feature_pass.cache
                else None,
            )
        if stage in (None, "fit"):
            self.drcdown_selector.reset()
            if self.trainer is not None:
                build.check_reload(
                    self.trainer.reload_dataloaders_every_n_epochs, self.trainer.max_epochs
                )

    # ------------------------------------------------------------- per-epoch subset
    def epoch_subset(self, epoch: int) -> EpochSubset | None:
        """DRCDown's decision for ``epoch`` from the trainer's model (None: DRCDown off)."""
        if not self.reshape.drcdown:
            return None
        trainer = self.trainer
        if trainer is None or trainer.lightning_module is None:
            raise ConfigError(
                "DRCDown needs the model: train_indices() with reshape.drcdown=true must be "
                "called while the datamodule is attached to a Trainer (trainer.fit)"
            )
        selector = self.drcdown_selector
        assert selector is not None
        if int(epoch) not in selector.results:
            # global rank 0 shows the feature pass (a row of Lightning's live bar if any)
            show = trainer if trainer.progress_bar_callback is not None else False
            selector.compute(
                trainer.lightning_module, int(epoch), progress=trainer.is_global_zero and show
            )
        return selector.results[int(epoch)]

    def train_indices(self, epoch: int) -> np.ndarray:
        """Rows of ``train_manifest`` for ``epoch``: DRCDown's kept pool rows + the rest."""
        self._require_setup()
        subset = self.epoch_subset(epoch)
        if subset is None:
            return np.arange(len(self.train_manifest), dtype=np.int64)
        return np.sort(np.concatenate([self._pool[subset.kept], self._always]))

    def train_dataloader(self) -> DataLoader:
        """The loader of this epoch's subset, shuffled by an :class:`EpochSampler` (under
        DDP every rank takes its share of the same (seed, epoch) order)."""
        epoch = self.current_epoch()
        dataset = self.train_dataset()
        indices = np.asarray(self.train_indices(epoch), dtype=np.int64)
        if indices.ndim != 1 or indices.size == 0:
            raise ConfigError(
                f"the training subset of epoch {epoch} is empty; check the training set "
                f"and the DRCDown thresholds (reshape.T_f, reshape.T_q, reshape.T_u)"
            )
        if self.scaling is not None and self.scaling.per_epoch:  # the authors, with DRCDown
            originals = indices[indices < self.n_original]
            dataset.scores = rescale_rows(dataset.scores, originals).astype(np.float32)
        return self.epoch_loader(dataset, indices, epoch, self.reseed_every_epoch)

    # ------------------------------------------------------------- checkpoint state
    def state_dict(self) -> dict[str, Any]:
        """The last DRCDown decision (so a run resumed mid-epoch keeps that subset)."""
        return {} if self.drcdown_selector is None else self.drcdown_selector.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the last DRCDown decision saved in a checkpoint."""
        if self.drcdown_selector is not None:
            self.drcdown_selector.load_state_dict(state_dict)

    # ------------------------------------------------------------- reporting
    def facts(self) -> DataFacts:
        """The run report's facts: the base ones plus DDCUp's data and the labels."""
        up, ddcup = self.ddcup_build, self.reshape.ddcup
        syndr = SynDRFacts(
            label_scaling=self.scaling.describe() if self.scaling else self.protocol.label_scaling,
            n_upsampled=0 if up is None else len(up.upsampled.manifest),
            upsample_key=None if up is None else up.upsampled.key,
            drcdown_on_upsampled=self.drcdown_on_upsampled,
            ddcup_reference_set=self.protocol.reference_set if ddcup else None,
            n_ddcup_refs=(up.n_refs if up else 0) if ddcup else None,
            candidate_pool=up.pool if up and ddcup else None,
            encoder_weights=self.reshape.ddcup_params.encoder_weights if ddcup else None,
            pool_names=up.pool_names if up else (),
        )
        return replace(super().facts(), n_train_original=self.n_original, syndr=syndr)
