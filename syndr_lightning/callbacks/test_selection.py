"""Opt-in test-set selection (``select_on_test=true``): the reference code's protocol."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from syndr_lightning.metrics import iqa_metrics


class TestSetSelection(Callback):
    """Evaluates every test set after each epoch (after its validation, when there is one)
    and remembers the best epoch per set.

    This is the reference code's protocol (best epoch on the test set), which is optimistic;
    it runs only with ``select_on_test=true`` and its metrics are named
    ``test_best_on_test/<dataset>/*``.
    """

    def __init__(self) -> None:
        self.best: dict[str, dict[str, float]] = {}
        self._scored: int | None = None

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Score each test set with the current weights; keep the best SRCC per set."""
        dm = trainer.datamodule
        if trainer.sanity_checking or dm is None or not getattr(dm, "test_names", None):
            return
        self._scored = int(trainer.current_epoch)
        self._score_epoch(trainer, pl_module, dm)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Without a validation set no validation epoch ends: score the test sets here."""
        dm = trainer.datamodule
        if dm is None or not getattr(dm, "test_names", None):
            return
        if self._scored == int(trainer.current_epoch):
            return
        self._scored = int(trainer.current_epoch)
        modes = {m: m.training for m in pl_module.modules()}
        pl_module.eval()
        try:
            self._score_epoch(trainer, pl_module, dm)
        finally:
            for module, training in modes.items():
                module.training = training

    @torch.no_grad()
    def _score_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, dm: Any) -> None:
        if not getattr(dm, "test_manifests", None):
            dm.setup("test")
        # Iterating loaders draws from the global RNGs; restore them so that opting in to
        # this report does not change the training run itself.
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            self._evaluate(trainer, pl_module, dm)
        random.setstate(py_state)
        np.random.set_state(np_state)

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, dm: Any) -> None:
        for name, loader in zip(dm.test_names, dm.test_dataloader(), strict=True):
            preds, targets = [], []
            for batch in loader:
                images = batch["image"].to(pl_module.device)
                preds.append(pl_module.predict_crops(images).float().cpu())  # type: ignore[operator]
                targets.append(batch["score"].float())
            values = iqa_metrics(torch.cat(preds).numpy(), torch.cat(targets).numpy())
            values["epoch"] = float(trainer.current_epoch)
            if name not in self.best or values["srcc"] > self.best[name]["srcc"]:
                self.best[name] = values

    def metrics(self) -> dict[str, float]:
        """``test_best_on_test/<dataset>/<metric>`` (and ``/epoch``) of the best epochs."""
        return {
            f"test_best_on_test/{name}/{key}": value
            for name, values in self.best.items()
            for key, value in values.items()
        }
