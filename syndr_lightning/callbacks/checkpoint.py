"""A ModelCheckpoint whose selection survives resuming into a new run folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from syndr_lightning.utils.io import atomic_path


class ResumableCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that keeps its top-k when a resumed run writes elsewhere.

    ``ckpt_path=<old run>/checkpoints/last.ckpt`` starts a new run folder. Lightning's
    callback then forgets its best score (its ``dirpath`` changed), so the validation
    selection would restart after the interruption and could pick a worse epoch than an
    uninterrupted run. Here the old top-k files that still exist are copied into the new
    folder (atomically) and their scores restored, so selection continues exactly.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the top-k, carrying the old run's checkpoint files over when needed."""
        old_dir = state_dict.get("dirpath", self.dirpath)
        if self.monitor is None or self.dirpath is None or old_dir == self.dirpath:
            super().load_state_dict(state_dict)
            return
        moved: dict[str, Any] = {}
        for old_path, score in (state_dict.get("best_k_models") or {}).items():
            source = Path(old_path)
            if not source.is_file():
                continue
            target = Path(self.dirpath) / source.name
            if not target.exists():
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
            moved[str(old_path)] = (str(target), score)
        if not moved:
            super().load_state_dict(state_dict)  # nothing to carry: Lightning's behaviour
            return
        self.best_k_models = {new: score for new, score in moved.values()}
        best = state_dict.get("best_model_path", "")
        kth = state_dict.get("kth_best_model_path", "")
        self.best_model_path = moved[best][0] if best in moved else ""
        if not self.best_model_path:  # the best file is gone: keep the best we still have
            pick = max if self.mode == "max" else min
            self.best_model_path = pick(self.best_k_models, key=lambda p: self.best_k_models[p])
        self.best_model_score = _as_tensor(self.best_k_models[self.best_model_path])
        self.kth_best_model_path = moved[kth][0] if kth in moved else self.best_model_path
        self.kth_value = _as_tensor(self.best_k_models[self.kth_best_model_path])
        self.last_model_path = ""


def _as_tensor(score: Any) -> torch.Tensor:
    return score if isinstance(score, torch.Tensor) else torch.tensor(float(score))
