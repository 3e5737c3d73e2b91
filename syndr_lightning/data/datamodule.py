"""The generic IQA LightningDataModule over manifests (see ``data/manifest.py``).

A dataset entry is a mapping ``{name, root, options}`` (``name`` a loader of
``data.datasets``, ``root`` its folder or file, ``options`` keyword arguments of the
loader) with optional ``label`` (the name metrics are logged under; default ``name``),
``crop_mode`` (``random``/``center``: overrides ``eval_crop_mode`` for that set) and
``resize`` (test sets: scale the shorter side to this many pixels before cropping, e.g.
512 for the reference code's ``BID_512``).

Validation is either an explicit ``val`` entry or ``val_fraction`` of the training set
held out by reference (when every row has one) or by image, seeded, and written to /
read from ``split_file`` when given. The training loader serves
``train_indices(current_epoch)``: all rows here; subclasses (``SynDRDataModule``)
override it to serve a per-epoch subset. With ``reload_dataloaders_every_n_epochs=1``
Lightning rebuilds the loader, and so re-asks for the indices, every epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from syndr_lightning.data import VAL_FRACTION
from syndr_lightning.data.datasets import load_dataset
from syndr_lightning.data.facts import DataFacts, describe_dataset
from syndr_lightning.data.manifest import validate_manifest
from syndr_lightning.data.sampler import EpochSampler, ResumableLoader, SeededSubset, WorkerSeeder
from syndr_lightning.utils.errors import ConfigError, DatasetError
from syndr_lightning.utils.images import read_rgb
from syndr_lightning.utils.runchecks import check_numbers
from syndr_lightning.utils.transforms import EvalTransform, TrainTransform

__all__ = ["IQADataModule", "ManifestDataset", "read_manifest_image"]

ImageReader = Callable[[str], np.ndarray]
Transform = Callable[..., torch.Tensor]


def read_manifest_image(path: str) -> np.ndarray:
    """Read an image file as ``uint8 [H,W,3]`` RGB; DatasetError when missing/unreadable
    (EXIF orientation applied, 16-bit scaled, pixel limit: ``utils.images.read_rgb``)."""
    return read_rgb(path, what="image listed in the manifest")


class ManifestDataset(Dataset):
    """Rows of a manifest as ``{"image", "score", "index"}`` dicts (index = manifest row)."""

    def __init__(
        self,
        manifest: pd.DataFrame,
        transform: Transform,
        image_reader: ImageReader | None = None,
    ) -> None:
        # Plain arrays (not the DataFrame) so worker processes share them cheaply.
        self.paths = manifest["path"].astype(str).to_numpy()
        scores = manifest["score"].to_numpy(dtype=np.float32) if "score" in manifest else None
        self.scores = scores if scores is not None else np.full(len(manifest), np.nan, np.float32)
        self.transform = transform
        self.image_reader = image_reader or read_manifest_image

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i = int(index)
        image = self.image_reader(str(self.paths[i]))
        return {
            "image": self.transform(image, index=i),
            "score": torch.tensor(self.scores[i], dtype=torch.float32),
            "index": torch.tensor(i, dtype=torch.int64),
        }


def _entry(value: Any, key: str) -> dict[str, Any]:
    """Validate one dataset entry mapping and return it as a plain dict."""
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{key} must be a mapping with keys name, root[, options, label, crop_mode]; "
            f"got {type(value).__name__}"
        )
    entry = dict(value)
    for required in ("name", "root"):
        if not entry.get(required):
            raise ConfigError(f"{key}.{required} is missing; expected e.g. name: csv, root: /path")
    options = entry.get("options") or {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{key}.options must be a mapping of loader options, got {options!r}")
    entry["options"] = dict(options)
    entry.setdefault("label", entry["name"])
    return entry


def load_entry(entry: Mapping[str, Any], key: str) -> pd.DataFrame:
    """Load the manifest of a dataset entry, naming the config ``key`` when the root is absent."""
    root = Path(str(entry["root"])).expanduser()
    if entry["name"] == "csv" and not root.exists():
        raise DatasetError(
            f"{key}.root={str(root)!r} does not exist; point it at your labels CSV (columns "
            f"path,score; docs/datasets.md)"
        )
    if entry["name"] != "synthetic" and not root.exists():
        raise DatasetError(
            f"{key}.root={str(root)!r} does not exist; download dataset {entry['name']!r} "
            f"there or set {key}.root (or paths.data_dir) to where it is"
        )
    return load_dataset(str(entry["name"]), str(root), **entry["options"])


class IQADataModule(L.LightningDataModule):
    """Train / val / test loaders over manifests; the base of every IQA experiment."""

    def __init__(
        self,
        train: Mapping[str, Any],
        test: Sequence[Mapping[str, Any]] | None = None,
        val: Mapping[str, Any] | None = None,
        val_fraction: float = VAL_FRACTION,
        split_file: str | None = None,
        seed: int = 0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        crop_size: int = 224,
        eval_crops: int = 5,
        eval_crop_mode: str = "random",
        hflip: bool = True,
        image_cache: bool = False,
        cache_dir: str | None = None,
        pin_memory: bool = False,
        test_fraction: float = 0.0,
        heldout_label: str | None = None,
        heldout_crop_mode: str = "center",
    ) -> None:
        super().__init__()
        self.train_entry = _entry(train, "data.train")
        self.test_entries = [_entry(t, f"data.test[{i}]") for i, t in enumerate(test or [])]
        self.val_entry = _entry(val, "data.val") if val is not None else None
        check_numbers(
            {
                "data.val_fraction": val_fraction,
                "data.test_fraction": test_fraction,
                "data.batch_size": batch_size,
                "data.eval_batch_size": eval_batch_size,
                "data.eval_crops": eval_crops,
                "data.num_workers": num_workers,
                "data.crop_size": crop_size,
            }
        )
        labels = [e["label"] for e in self.test_entries]
        if len(set(labels)) != len(labels):
            raise ConfigError(
                f"data.test labels must be unique (metrics are logged under them), got "
                f"{labels}; give repeated datasets distinct `label:` values"
            )
        self.val_fraction = float(val_fraction)
        self.split_file = split_file
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.crop_size = int(crop_size)
        self.eval_crops = int(eval_crops)
        self.eval_crop_mode = eval_crop_mode
        self.hflip = bool(hflip)
        self.image_cache = bool(image_cache)
        self.cache_dir = cache_dir
        self.pin_memory = bool(pin_memory)
        # Validate crop settings now rather than at the first batch.
        self.train_transform = TrainTransform(self.crop_size, self.hflip)
        self.eval_transform = EvalTransform(self.crop_size, eval_crops, eval_crop_mode, seed)
        for entry in self.test_entries:  # a bad test-set resize fails now, not after training
            if entry.get("resize") is not None:
                EvalTransform(self.crop_size, eval_crops, eval_crop_mode, seed, entry["resize"])
        # the training split as loaded, and what training serves (derived from it once)
        self.original_manifest: pd.DataFrame | None = None
        self.train_manifest: pd.DataFrame | None = None
        self.val_manifest: pd.DataFrame | None = None
        self.test_manifests: dict[str, pd.DataFrame] = {}
        self.test_names: list[str] = [e["label"] for e in self.test_entries]
        self._readers: dict[str, ImageReader] = {}
        self.test_fraction = float(test_fraction)
        self.heldout_label = heldout_label or f"{self.train_entry['name']}_heldout"
        if heldout_crop_mode not in ("random", "center"):
            raise ConfigError(
                f"data.heldout_crop_mode must be 'random' or 'center', got {heldout_crop_mode!r}"
            )
        self.heldout_crop_mode = heldout_crop_mode
        self._heldout: pd.DataFrame | None = None
        for i, entry in enumerate(self.test_entries):
            group = entry.get("group_by")
            if group is not None and group not in ("dist_class", "dist_type", "ref"):
                raise ConfigError(
                    f"data.test[{i}].group_by={group!r} is unknown; allowed: dist_class, "
                    f"dist_type, ref (one extra test set per value, e.g. PIPAL's classes)"
                )

    # ----------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        """Load every manifest and split train/val (idempotent)."""
        if self.train_manifest is None:
            self.train_manifest = self._derive_train(self._load_train())
        if self.val_manifest is None and self.val_entry is not None:
            self.val_manifest = validate_manifest(load_entry(self.val_entry, "data.val"))
        if not self.test_manifests:
            for i, entry in enumerate(self.test_entries):
                manifest = validate_manifest(load_entry(entry, f"data.test[{i}]"))
                self.test_manifests[entry["label"]] = manifest.reset_index(drop=True)
        self._add_test_sets()
        if self.image_cache and stage in (None, "fit"):
            self.open_caches()

    def open_caches(self) -> None:
        """Open every image cache the run will read (training, validation, each test set):
        each is verified against its digests, and rebuilt when damaged, before training."""
        train = self._require_setup()
        self._reader(train, f"train{len(train)}")
        if self.val_manifest is not None:
            self._reader(self.val_manifest, "val")
        for name, manifest in self.test_manifests.items():
            self._reader(manifest, f"test/{name}")

    def _load_train(self) -> pd.DataFrame:
        """The training split of ``data.train`` (loaded and split once)."""
        if self.original_manifest is None:
            full = validate_manifest(load_entry(self.train_entry, "data.train"))
            self.original_manifest, self.val_manifest = self._split(full)
        return self.original_manifest

    def _derive_train(self, original: pd.DataFrame) -> pd.DataFrame:
        """The manifest training serves, derived once from the training split."""
        return original

    def _split(self, full: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Train/val split (by reference where every row has one, else by image), reused
        from or saved to ``split_file``; with ``test_fraction`` whole references are also
        held out as a test set (the intra-dataset protocol)."""
        held_out = self.test_fraction > 0.0
        if not held_out and (self.val_entry is not None or self.val_fraction == 0.0):
            return full.reset_index(drop=True), None
        from syndr_lightning.data import splits

        path = Path(self.split_file).expanduser() if self.split_file else None
        if path is not None and path.is_file():
            marked = splits.load_split(full, path)
        else:
            if held_out or full["ref"].notna().all():
                marked = splits.split_by_reference(
                    full, self.val_fraction, self.seed, test_fraction=self.test_fraction
                )
            else:
                marked = splits.split_by_image(full, self.val_fraction, self.seed)
            if path is not None:
                splits.save_split(marked, path)
        train = marked[marked["split"] == "train"].reset_index(drop=True)
        val = marked[marked["split"] == "val"].reset_index(drop=True)
        if held_out:
            self._heldout = marked[marked["split"] == "test"].reset_index(drop=True)
            return train, (val if len(val) else None)
        if len(train) == 0 or len(val) == 0:
            raise ConfigError(
                f"data.val_fraction={self.val_fraction} leaves {len(train)} training and "
                f"{len(val)} validation images; use a fraction that keeps both non-empty"
            )
        return train, val

    def _add_test_sets(self) -> None:
        """Append the held-out references and the per-group test sets (idempotent)."""
        entries = list(self.test_entries)
        if self._heldout is not None and self.heldout_label not in self.test_manifests:
            self.test_manifests[self.heldout_label] = self._heldout
            entries.append(
                {
                    **self.train_entry,
                    "label": self.heldout_label,
                    "crop_mode": self.heldout_crop_mode,
                }
            )
        for entry in list(entries):
            group = entry.get("group_by")
            if group is None:
                continue
            manifest = self.test_manifests[entry["label"]]
            if group not in manifest.columns:
                raise DatasetError(
                    f"test set {entry['label']!r} has no column {group!r} to group by; "
                    f"drop group_by or use a dataset that has it (PIPAL: dist_class)"
                )
            for value in sorted(manifest[group].dropna().unique()):
                label = f"{entry['label']}_{group}{value}"
                if label in self.test_manifests:
                    continue
                part = manifest[manifest[group] == value].reset_index(drop=True)
                self.test_manifests[label] = part
                entries.append({**entry, "label": label, "group_by": None})
        self.test_entries = entries
        self.test_names = [e["label"] for e in entries]

    def facts(self) -> DataFacts:
        """What the run report states about this data (after ``setup``)."""
        base, val = self.original_manifest, self.val_manifest
        return DataFacts(
            train=describe_dataset(self.train_entry["name"], self.train_entry.get("options")),
            val_fraction=self.val_fraction,
            eval_crops=self.eval_crops,
            eval_crop_mode=str(self.eval_crop_mode),
            crop_size=self.crop_size,
            hflip=self.hflip,
            n_val=None if val is None else len(val),
            n_val_refs=None if val is None else int(val["ref"].nunique()),
            n_train_refs=None if base is None else int(base["ref"].dropna().nunique()),
            train_types=()
            if base is None
            else tuple(sorted(int(t) for t in base["dist_type"].dropna().unique())),
            centre_crop_sets=tuple(
                str(e.get("label", e.get("name")))
                for e in self.test_entries
                if e.get("crop_mode") == "center"
            ),
            test_resize={
                str(e["label"]): e["resize"] for e in self.test_entries if e.get("resize")
            },
        )

    # ------------------------------------------------------------- helpers
    def _reader(self, manifest: pd.DataFrame, key: str) -> ImageReader | None:
        if not self.image_cache:
            return None
        if key not in self._readers:
            try:
                from syndr_lightning.data.cache import ImageCache
            except ImportError:
                raise ConfigError(
                    "data.image_cache=true but syndr_lightning.data.cache is not available; "
                    "set data.image_cache=false"
                ) from None
            if not self.cache_dir:
                raise ConfigError("data.image_cache=true needs data.cache_dir (a writable folder)")
            cache = ImageCache.open_or_build(list(manifest["path"].astype(str)), self.cache_dir)
            self._readers[key] = cache.get
        return self._readers[key]

    def _require_setup(self) -> pd.DataFrame:
        if self.train_manifest is None:
            self.setup("fit")
        assert self.train_manifest is not None
        return self.train_manifest

    def current_epoch(self) -> int:
        """The trainer's epoch (0 when not attached to a trainer)."""
        trainer = getattr(self, "trainer", None)
        return int(trainer.current_epoch) if trainer is not None else 0

    def train_indices(self, epoch: int) -> np.ndarray:
        """Rows of ``train_manifest`` to train on in ``epoch`` (here: all of them)."""
        return np.arange(len(self._require_setup()), dtype=np.int64)

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )

    # --------------------------------------------------------- dataloaders
    def train_dataset(self) -> ManifestDataset:
        """The whole training manifest as a dataset (training transform)."""
        manifest = self._require_setup()
        return ManifestDataset(
            manifest, self.train_transform, self._reader(manifest, f"train{len(manifest)}")
        )

    def train_dataloader(self) -> DataLoader:
        """Loader over ``train_indices(current_epoch)`` in a (seed, epoch) order."""
        dataset = self.train_dataset()
        indices = np.asarray(self.train_indices(self.current_epoch()))
        if indices.ndim != 1 or indices.size == 0:
            raise ConfigError(
                f"train_indices() must return a non-empty 1-D array, got shape {indices.shape}"
            )
        if indices.min() < 0 or indices.max() >= len(dataset):
            raise ConfigError(
                f"train_indices() returned rows outside 0..{len(dataset) - 1} "
                f"(min {indices.min()}, max {indices.max()})"
            )
        return self.epoch_loader(dataset, indices, self.current_epoch())

    def epoch_loader(
        self, dataset: Dataset, indices: np.ndarray, epoch: int, reseed: bool = True
    ) -> ResumableLoader:
        """The training loader of ``epoch`` over ``dataset[indices]``: order, crops and
        flips a function of (seed, epoch) (``reseed=False``: crops from the global RNG
        stream), resumable mid-epoch (``data/sampler.py``)."""
        rows = np.asarray(indices, dtype=np.int64).tolist()
        return ResumableLoader(
            SeededSubset(dataset, rows, self.seed if reseed else None, epoch),
            batch_size=self.batch_size,
            sampler=EpochSampler(len(rows), self.seed, epoch, reseed),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=False,
            worker_init_fn=WorkerSeeder(self.seed, epoch) if reseed else None,
            epoch=epoch,
            trained=self._batches_trained,
        )

    def _batches_trained(self) -> int:
        """Training batches the trainer has finished in its current epoch (0 unattached)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def val_dataloader(self) -> DataLoader | list[Any]:
        """Loader over the validation set (``[]`` when there is none)."""
        self._require_setup()
        if self.val_manifest is None:
            return []
        reader = self._reader(self.val_manifest, "val")
        return self._eval_loader(ManifestDataset(self.val_manifest, self.eval_transform, reader))

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test dataset, in the order of ``test_names``."""
        self._require_setup()
        loaders = []
        for entry in self.test_entries:
            name = entry["label"]
            manifest = self.test_manifests[name]
            mode = entry.get("crop_mode") or self.eval_crop_mode
            transform = EvalTransform(
                self.crop_size, self.eval_crops, mode, self.seed, resize=entry.get("resize")
            )
            ds = ManifestDataset(manifest, transform, self._reader(manifest, f"test/{name}"))
            loaders.append(self._eval_loader(ds))
        return loaders
