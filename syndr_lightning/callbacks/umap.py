"""End-of-training figures: UMAP feature maps, DRCDown cluster sizes, per-epoch curves.

Enable with ``callbacks=umap`` style overrides (conf/callbacks/umap.yaml adds it to the
default callbacks). At the end of ``fit`` (global rank 0 only) the callback writes, under
``<run dir>/figures/`` by default:

* ``umap_train.png``: features of (a subsample of) the original training images,
  coloured by label, prediction, reference and distortion type (paper Fig. 1);
* ``umap_<test set>.png`` and ``umap_joint.png``: the test sets alone and together with
  the training images (Fig. 3), when the datamodule has test sets;
* ``drcdown_clusters_start.png`` / ``drcdown_clusters_final.png``: cluster sizes
  before/after DRCDown on the training pool's features from the model at the start of
  training (what epoch 0's DRCDown sees) and from the final model (needs a datamodule
  with ``drcdown_params``, i.e. :class:`~syndr_lightning.data.syndr.SynDRDataModule`);
* ``curves.png``: ``drcdown/kept`` and ``val/srcc`` per epoch from the CSV logger.

Every figure is also sent to the TensorBoard and W&B loggers when they are enabled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightning.pytorch import Callback, LightningModule, Trainer

from syndr_lightning.data.syndr import SynDRDataModule
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.io import atomic_open

__all__ = ["UMAPCallback"]


class UMAPCallback(Callback):
    """Write the diagnostic figures of a finished fit (see the module docstring)."""

    def __init__(
        self,
        out_dir: str | None = None,
        max_samples: int = 1000,
        n_epochs: int | None = None,
        crops: int = 1,
        seed: int = 0,
        include_test: bool = True,
        clusters: bool = True,
        curves: bool = True,
        batch_size: int = 32,
    ) -> None:
        if int(max_samples) < 3:
            raise ConfigError(f"callbacks.umap.max_samples must be >= 3; got {max_samples}")
        if int(crops) < 1:
            raise ConfigError(f"callbacks.umap.crops must be >= 1; got {crops}")
        self.out_dir = out_dir
        self.max_samples = int(max_samples)
        self.n_epochs = n_epochs
        self.crops = int(crops)
        self.seed = int(seed)
        self.include_test = bool(include_test)
        self.clusters = bool(clusters)
        self.curves = bool(curves)
        self.batch_size = int(batch_size)
        self.figures: dict[str, Path] = {}
        self.summary: dict[str, Any] = {}

    def _out(self, trainer: Trainer) -> Path:
        return Path(self.out_dir or trainer.default_root_dir) / "figures"

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Cluster sizes from the features of the model as training starts."""
        dm = trainer.datamodule
        if not (self.clusters and trainer.is_global_zero and dm is not None):
            return
        if not isinstance(dm, SynDRDataModule) or dm.train_manifest is None:
            return
        was_training = pl_module.training
        try:
            self.figures.update(self._clusters(dm, pl_module, self._out(trainer), "start"))
        finally:
            pl_module.train(was_training)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compute and write the figures once training is over."""
        if not trainer.is_global_zero:
            return
        dm = trainer.datamodule
        if dm is None or getattr(dm, "train_manifest", None) is None:
            raise ConfigError(
                "UMAPCallback needs a datamodule with a train_manifest (IQADataModule); "
                "drop callbacks.umap for other setups"
            )
        out = self._out(trainer)
        was_training = pl_module.training
        try:
            # Progress as rows of Lightning's bar when it is live, else on stderr; none
            # when progress bars are off.
            shown = trainer if trainer.progress_bar_callback is not None else False
            self.figures.update(self._maps(dm, pl_module, out, shown))
            if self.clusters and isinstance(dm, SynDRDataModule):
                self.figures.update(self._clusters(dm, pl_module, out, "final"))
            if self.curves:
                self.figures.update(self._curves(trainer, out))
        finally:
            pl_module.train(was_training)
        with atomic_open(out / "figures.json") as fh:
            json.dump(
                {
                    "figures": {k: str(v) for k, v in self.figures.items()},
                    **self.summary,
                },
                fh,
                indent=1,
            )
        from syndr_lightning.viz.logging import log_figures

        log_figures(trainer.loggers, self.figures, step=int(trainer.global_step))

    # ------------------------------------------------------------------ parts
    def _scorer(self, dm: Any, pl_module: LightningModule) -> Any:
        from syndr_lightning.inference.api import Scorer

        return Scorer(
            module=pl_module,
            crop_size=int(getattr(dm, "crop_size", 224)),
            crops=self.crops,
            crop_mode="center" if self.crops == 1 else "random",
            seed=self.seed,
            batch_size=self.batch_size,
            device=pl_module.device,
        )

    def _maps(
        self, dm: Any, pl_module: LightningModule, out: Path, progress: Any = False
    ) -> dict[str, Path]:
        from syndr_lightning.viz.maps import feature_maps

        train = getattr(dm, "original_manifest", None)
        if train is None:
            train = dm.train_manifest
        manifests: dict[str, pd.DataFrame] = {"train": train}
        if self.include_test:
            for name, manifest in (getattr(dm, "test_manifests", None) or {}).items():
                if len(manifest) >= 3:
                    manifests[str(name)] = manifest
        figures = feature_maps(
            self._scorer(dm, pl_module),
            manifests,
            out,
            max_samples=self.max_samples,
            seed=self.seed,
            n_epochs=self.n_epochs,
            progress=progress,
        )
        # A joint map with several test sets also exists; the per-set maps are enough.
        return figures

    def _clusters(
        self, dm: Any, pl_module: LightningModule, out: Path, when: str
    ) -> dict[str, Path]:
        from syndr_lightning.reshape.features import extract_features
        from syndr_lightning.viz.maps import drcdown_cluster_figure

        params, fp = dm.reshape.drcdown_params, dm.feature_pass
        pool = getattr(dm, "original_manifest", None)
        if pool is None:
            pool = dm.train_manifest
        feats = extract_features(
            pl_module,
            list(pool["path"].astype(str)),
            crop_size=int(fp.crop_size),
            resize=fp.resize,
            batch_size=fp.batch_size,
            num_workers=fp.num_workers,
            device=pl_module.device,
            cache_dir=None if dm.drcdown_selector is None else dm.drcdown_selector.cache_dir,
        )
        try:
            png, summary = drcdown_cluster_figure(
                feats,
                pool["score"].to_numpy(dtype=np.float64),
                out / f"drcdown_clusters_{when}.png",
                params,
                seed=self.seed,
                title=f"Cluster sizes before/after DRCDown ({when} of training)",
            )
        except InputError:
            return {}
        self.summary[f"drcdown_{when}"] = summary
        return {f"drcdown/clusters_{when}": png}

    def _curves(self, trainer: Trainer, out: Path) -> dict[str, Path]:
        from syndr_lightning.viz.figures import plot_training_curves

        for logger in trainer.loggers:
            if type(logger).__name__ == "CSVLogger":
                logger.save()
                metrics = Path(logger.log_dir) / "metrics.csv"
                if not metrics.is_file():
                    continue
                try:
                    return {"curves": plot_training_curves(metrics, out / "curves.png")}
                except InputError:
                    return {}
        return {}
