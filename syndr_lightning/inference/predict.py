"""Scoring many files: decoding in DataLoader workers, a progress bar, one row per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from syndr_lightning.inference.api import Scorer
from syndr_lightning.utils.errors import SyndrError
from syndr_lightning.utils.images import verify_checksums, verify_image
from syndr_lightning.utils.progress import progress as show_progress

__all__ = ["predict_files"]


class _FileDataset(Dataset):
    """Decodes one file into crops; a failure becomes an error string, not an exception."""

    def __init__(self, files: list[Path], scorer: Scorer) -> None:
        self.files = files
        self.scorer = scorer

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        # data check's checks first: the file's own checksums (a PNG whose CRC fails
        # decodes to wrong pixels) and its size; then the decode itself.
        why = verify_checksums(self.files[i]) or verify_image(self.files[i], full=False)
        if why is not None:
            return i, None, why
        try:
            return i, self.scorer.preprocess(self.files[i]), ""
        except (SyndrError, OSError, ValueError) as exc:
            return i, None, str(exc)


def _collate(items: list[tuple[int, torch.Tensor | None, str]]) -> list[Any]:
    return items


def predict_files(
    scorer: Scorer,
    files: list[Path],
    *,
    workers: int = 0,
    progress: bool = True,
    clamp: bool = True,
) -> pd.DataFrame:
    """Score ``files``; returns ``path, score, error`` in input order (errors per file).

    ``clamp=False`` keeps scores outside 0..10 (evaluation: as training's test sees them).
    """
    scores: list[float | None] = [None] * len(files)
    errors: list[str] = [""] * len(files)
    loader = DataLoader(
        _FileDataset(files, scorer),
        batch_size=scorer.batch_size,
        num_workers=int(workers),
        collate_fn=_collate,
    )
    with show_progress("scoring", len(files), enabled=progress) as bar:
        for items in loader:
            good = [(i, x) for i, x, _ in items if x is not None]
            for i, x, err in items:
                if x is None:
                    errors[i] = err
            if good:
                preds = scorer.score_crops(torch.stack([x for _, x in good]), clamp)
                for (i, _), s in zip(good, preds.tolist(), strict=True):
                    scores[i] = float(s)
            bar.advance(len(items))
    return pd.DataFrame(
        {
            "path": [str(f) for f in files],
            "score": pd.array(scores, dtype="Float64"),
            "error": errors,
        }
    )
