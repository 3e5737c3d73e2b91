"""DRCDown in the training loop: the callback that logs each epoch's subset.

The subset itself is computed by the datamodule's engine
(:class:`syndr_lightning.reshape.engine.DRCDownSelector`) when the train loader is built;
see that module and docs/syndr.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch import Callback, LightningModule, Trainer

from syndr_lightning.utils.io import atomic_open, atomic_path


class DRCDownCallback(Callback):
    """Logs the DRCDown decision of every epoch and keeps the subset history.

    The subset itself is computed by the datamodule's engine
    (:class:`~syndr_lightning.reshape.engine.DRCDownSelector`) when the train loader is built (see the module docstring). This callback logs ``drcdown/*``
    (kept, clusters, cluster-size statistics, feature/selection seconds; docs/metrics.md)
    at the start of each epoch (a run resumed mid-epoch: at its first batch), records the subset's hash as run metadata
    (``drcdown/subset_hash``: W&B summary, TensorBoard text), writes ``drcdown_history[.rank<r>].json`` under
    ``history_dir`` (default: the trainer's ``default_root_dir``) and stores the history
    in checkpoints so a resumed run continues it.
    """

    def __init__(self, history_dir: str | None = None, save_indices: bool = True) -> None:
        self.history_dir = history_dir
        self.save_indices = save_indices
        self.history: list[dict[str, Any]] = []
        self._indices: dict[int, np.ndarray] = {}
        self._recorded: set[int] = set()  # epochs recorded by this process
        self._merged = False  # earlier epochs' subsets read back from the run folder

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Log the subset that the current epoch's loader was built from."""
        self._record(trainer, pl_module, log=True)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """A run resumed mid-epoch skips ``on_train_epoch_start``: record that epoch's
        subset at its first resumed batch (its ``drcdown/*`` values were restored with
        the epoch's logged sums, ``callbacks/resume.py``)."""
        if int(trainer.current_epoch) not in self._recorded:
            self._record(trainer, pl_module, log=False)

    def _record(self, trainer: Trainer, pl_module: LightningModule, log: bool) -> None:
        dm = trainer.datamodule
        if getattr(dm, "drcdown_selector", None) is None:
            return
        epoch = int(trainer.current_epoch)
        self._recorded.add(epoch)
        # computed when the loader was built; computed now when it was not rebuilt
        result = dm.epoch_subset(epoch)
        if log:
            for key, value in result.metrics().items():
                pl_module.log(key, value, on_step=False, on_epoch=True, sync_dist=False)
        if trainer.is_global_zero:
            from syndr_lightning.tracking import set_metadata

            set_metadata(trainer.loggers, {"drcdown/subset_hash": result.hash}, step=epoch)
        rec = result.record()
        rec["rank"] = int(trainer.global_rank)
        old = next((h for h in self.history if h["epoch"] == epoch), None)
        if old is not None and not log:  # resumed: keep the epoch's record (its timings)
            rec = old
        self.history = [h for h in self.history if h["epoch"] != epoch] + [rec]
        if self.save_indices:
            self._indices[epoch] = result.kept
        self._write(trainer)

    def _write(self, trainer: Trainer) -> None:
        root = Path(self.history_dir or trainer.default_root_dir)
        suffix = "" if trainer.global_rank == 0 else f".rank{trainer.global_rank}"
        with atomic_open(root / f"drcdown_history{suffix}.json") as fh:
            json.dump(self.history, fh, indent=1)
        if self.save_indices and self._indices:
            subsets = root / f"drcdown_subsets{suffix}.npz"
            if not self._merged and subsets.is_file():  # a resumed run: keep earlier epochs
                with np.load(subsets) as saved:
                    for name in saved.files:
                        epoch = int(name.removeprefix("epoch_"))
                        self._indices.setdefault(epoch, saved[name])
            self._merged = True
            with (
                atomic_path(subsets) as tmp,
                open(tmp, "wb") as fh,
            ):
                np.savez(fh, **{f"epoch_{e}": v for e, v in sorted(self._indices.items())})

    def state_dict(self) -> dict[str, Any]:
        """Checkpointed state: the history of past epochs."""
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history of the epochs before the checkpoint."""
        self.history = list(state_dict.get("history", []))
