"""Exact resume: what a checkpoint needs beyond Lightning's own state so that a run
resumed from it ends exactly like the uninterrupted run (docs/training.md, "Resume").

Lightning restores the weights, optimisers, schedulers, loop counters and callback
states; the training loader resumes at its batch (``data/sampler.py``). Two things are
still missing, and :class:`ExactResume` adds them to every checkpoint:

* **The epoch's logged sums.** Values logged with ``on_epoch=True`` (``train/loss``'s
  epoch mean, DRCDown's ``drcdown/*`` logged at the epoch's start) are accumulated in
  Lightning's result collection, which no checkpoint holds: a run resumed mid-epoch
  would average only the batches after the resume and lose the epoch-start values (the
  ``on_train_epoch_start`` hooks do not run again). The accumulated sums and counts are
  saved and put back before the first resumed batch, so the sums continue exactly.
* **A clean validation.** A checkpoint written during validation (SIGTERM) would make
  Lightning skip the rest of that validation (or count half of it): the saved progress
  says instead that validation had just started, so the resumed run validates that
  epoch again from its first batch with empty metric states.

The run's identity (task, data, backbone, protocol; :mod:`syndr_lightning.run_identity`)
is stored in every checkpoint too, so that ``ckpt_path=`` can refuse another run's.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import RunningStage

from syndr_lightning.run_identity import IDENTITY_KEY

__all__ = ["ExactResume"]

log = logging.getLogger(__name__)

_REDUCE = ("mean", "sum", "max", "min")
#: Update count given to a restored entry: Lightning clearing it resets the count to 0.
_RESTORED = 1 << 40


class ExactResume(Callback):
    """Saves the epoch's logged sums, marks a validation cut short as not started, and
    stores the run identity (``identity``, a plain mapping) in every checkpoint."""

    def __init__(self, identity: dict[str, Any] | None = None) -> None:
        self.identity = dict(identity or {})
        self._trainer: Trainer | None = None
        self._pending: list[dict[str, Any]] = []
        self._epoch_over = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Remember the trainer (``state_dict`` is called without it)."""
        self._trainer = trainer

    # ------------------------------------------------------------- saving
    def state_dict(self) -> dict[str, Any]:
        """The training epoch's accumulated ``on_epoch`` values (empty between epochs)."""
        trainer = self._trainer
        if trainer is None or trainer.state.fn != "fit" or trainer.sanity_checking:
            return {"epoch_sums": []}
        if self._epoch_over:
            return {"epoch_sums": []}
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        if progress.processed == 0:
            return {"epoch_sums": []}  # nothing accumulated yet this epoch
        sums = []
        for key, metric in trainer.fit_loop.epoch_loop._results.items():
            entry = _saved(key, metric)
            if entry is not None:
                sums.append(entry)
        return {"epoch_sums": sums}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the sums until the resumed epoch starts."""
        self._pending = list(state_dict.get("epoch_sums") or [])

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Store the run identity; a validation cut short is saved as not started."""
        if self.identity:
            checkpoint[IDENTITY_KEY] = dict(self.identity)
        if trainer.state.fn == "fit" and trainer.state.stage == RunningStage.VALIDATING:
            loops = checkpoint.get("loops", {}).get("fit_loop", {})
            progress = loops.get("epoch_loop.val_loop.batch_progress")
            if progress is not None:
                loops["epoch_loop.val_loop.batch_progress"] = _validation_not_started(progress)

    # ------------------------------------------------------------- restoring
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Put the saved sums back into the (fresh) result collection of the epoch, and
        the last step values into the callback metrics."""
        if not self._pending:
            return
        results = trainer.fit_loop.epoch_loop._results
        try:
            for entry in self._pending:
                _restore(results, entry, trainer)
                if entry["on_step"] and entry["step_value"] is not None:
                    name = entry["name"] + "_step"
                    trainer.callback_metrics[name] = entry["step_value"]
        except Exception as exc:  # a Lightning internals change: say so, train on
            log.warning("could not restore the interrupted epoch's logged sums: %s", exc)
            self._pending = []

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        """After the first resumed batch: Lightning cleared the values its hooks logged
        again (a new loop iteration starts them afresh): add the saved sums back (the
        order of two additions does not change a float sum)."""
        if not self._pending:
            return
        results = trainer.fit_loop.epoch_loop._results
        for entry in self._pending:
            metric = results.get(entry["key"])
            if metric is None or metric._update_count >= _RESTORED:
                continue  # not cleared: the restored sums are still in it
            value = entry["value"].to(metric.value.device)
            if entry["reduce"] in ("max", "min"):
                metric.value = metric.meta.reduce_fx(metric.value, value)
            else:
                metric.value = metric.value + value
            if entry["count"] is not None:
                count = entry["count"].to(metric.cumulated_batch_size.device)
                metric.cumulated_batch_size = metric.cumulated_batch_size + count
            metric._computed = None
        self._pending = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The epoch is over: a checkpoint written from now on (``last.ckpt``; checkpoint
        callbacks run after this one) resumes at the next epoch, with no sums to carry;
        a resumed epoch's sums are used up (one resumed mid-validation trains no batch)."""
        self._pending = []
        self._epoch_over = True

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, idx: int
    ) -> None:
        """An epoch is under way."""
        self._epoch_over = False


def _saved(key: str, metric: Any) -> dict[str, Any] | None:
    """One result entry as tensors and plain values (None: not an epoch tensor value)."""
    meta = getattr(metric, "meta", None)
    if meta is None or not getattr(metric, "is_tensor", False) or not meta.on_epoch:
        return None
    reduce = next((r for r in _REDUCE if getattr(meta, f"is_{r}_reduction")), None)
    if reduce is None:
        return None
    cache = metric._forward_cache
    return {
        "key": key,
        "fx": meta.fx,
        "name": meta.name,
        "prog_bar": bool(meta.prog_bar),
        "logger": bool(meta.logger),
        "on_step": bool(meta.on_step),
        "reduce": reduce,
        "add_dataloader_idx": bool(meta.add_dataloader_idx),
        "dataloader_idx": meta.dataloader_idx,
        "sync_dist": bool(meta.sync.should),
        "value": metric.value.detach().cpu().clone(),
        "count": metric.cumulated_batch_size.detach().cpu().clone() if reduce == "mean" else None,
        "step_value": cache.detach().cpu().clone() if isinstance(cache, torch.Tensor) else None,
    }


def _restore(results: Any, entry: dict[str, Any], trainer: Trainer) -> None:
    """Register ``entry`` in ``results`` with its metadata and saved sums."""
    from lightning.pytorch.trainer.connectors.logger_connector.result import (
        _Metadata,
        _ResultMetric,
        _Sync,
    )

    meta = _Metadata(
        fx=entry["fx"],
        name=entry["name"],
        prog_bar=entry["prog_bar"],
        logger=entry["logger"],
        on_step=entry["on_step"],
        on_epoch=True,
        reduce_fx=entry["reduce"],
        add_dataloader_idx=entry["add_dataloader_idx"],
        dataloader_idx=entry["dataloader_idx"],
    )
    meta.sync = _Sync(_should=entry["sync_dist"], fn=trainer.strategy.reduce)
    metric = _ResultMetric(meta, True)
    device = trainer.lightning_module.device
    metric.to(device)
    metric.value = entry["value"].to(device)
    if entry["count"] is not None:
        metric.cumulated_batch_size = entry["count"].to(device)
    if entry["step_value"] is not None:
        metric._forward_cache = entry["step_value"].to(device)
    metric.has_reset = False
    metric._update_count = _RESTORED
    results[entry["key"]] = metric


def _validation_not_started(progress: dict[str, Any]) -> dict[str, Any]:
    """Validation progress saying: one batch started, none done (Lightning's "restarted
    mid-evaluation"), so the resumed run runs the whole validation again."""
    total, current = dict(progress["total"]), dict(progress["current"])
    before = int(total["completed"]) - int(current["completed"])  # earlier validations
    total.update(ready=before + 1, started=before + 1, processed=before, completed=before)
    current.update(ready=1, started=1, processed=0, completed=0)
    return {**progress, "total": total, "current": current, "is_last_batch": False}
