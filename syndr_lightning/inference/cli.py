"""``syndr predict``: score image files and folders with a checkpoint, write a CSV.

    syndr predict --ckpt run/checkpoints/last.ckpt photos/ extra.jpg --out scores.csv

One row per file (``path,score,error``): ``score`` on 0..10 (higher is better), or empty
with the reason in ``error`` when the file cannot be decoded (or is above the pixel
limit, ``--max-pixels``); the other files go on. The CSV is written atomically at the
end; when no image at all could be scored an existing CSV is kept as it was (exit 1).
Exit status: 0 something was scored, 1 nothing could be, 2 bad arguments or checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from syndr_lightning.inference.api import Scorer, collect_images, load_model
from syndr_lightning.utils.errors import ConfigError, SyndrError, one_line
from syndr_lightning.utils.images import set_max_image_pixels
from syndr_lightning.utils.io import atomic_open
from syndr_lightning.utils.progress import progress as progress_bar

__all__ = ["predict_files", "register", "run"]


class _FileDataset(Dataset):
    """Decodes one file into crops; a failure becomes an error string, not an exception."""

    def __init__(self, files: list[Path], scorer: Scorer) -> None:
        self.files = files
        self.scorer = scorer

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            return i, self.scorer.preprocess(self.files[i]), ""
        except (SyndrError, OSError, ValueError) as exc:
            return i, None, str(exc)


def _collate(items: list[tuple[int, torch.Tensor | None, str]]) -> list[Any]:
    return items


def predict_files(
    scorer: Scorer, files: list[Path], *, workers: int = 0, progress: bool = True
) -> pd.DataFrame:
    """Score ``files``; returns ``path, score, error`` in input order (errors per file)."""
    scores: list[float | None] = [None] * len(files)
    errors: list[str] = [""] * len(files)
    loader = DataLoader(
        _FileDataset(files, scorer),
        batch_size=scorer.batch_size,
        num_workers=int(workers),
        collate_fn=_collate,
    )
    with progress_bar("scoring", len(files), enabled=progress) as bar:
        for items in loader:
            good = [(i, x) for i, x, _ in items if x is not None]
            for i, x, err in items:
                if x is None:
                    errors[i] = err
            if good:
                preds = scorer.score_crops(torch.stack([x for _, x in good]))
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


def run(args: argparse.Namespace) -> int:
    """Body of ``syndr predict``; returns the exit code."""
    try:
        if Path(args.out).is_dir():
            raise ConfigError(f"--out {args.out!r} is a directory; pass the CSV file to write")
        if args.max_pixels is not None:
            set_max_image_pixels(args.max_pixels)
        files = collect_images(args.inputs)
        scorer = load_model(
            args.ckpt,
            crops=args.crops,
            crop_size=args.crop_size,
            crop_mode="center" if args.center else "random",
            device=args.device,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        table = predict_files(scorer, files, workers=args.workers, progress=not args.quiet)
        failed = int((table["error"] != "").sum())
        if failed == len(table) and Path(args.out).exists():
            print(
                f"syndr predict: error: none of the {len(table)} images could be scored (first: "
                f"{table['error'].iloc[0]}); {args.out} was left as it was",
                file=sys.stderr,
            )
            return 1
        with atomic_open(args.out, "w", newline="") as fh:
            table.to_csv(fh, index=False, float_format="%.4f")
    except SyndrError as exc:
        print(f"syndr predict: error: {one_line(exc)}", file=sys.stderr)
        return 2
    print(
        f"scored {len(table) - failed} of {len(table)} images -> {args.out}"
        + (f" ({failed} unreadable: see the error column)" if failed else "")
    )
    return 1 if failed == len(table) else 0


def register(subparsers: Any) -> None:
    """Add the ``predict`` subcommand."""
    p = subparsers.add_parser(
        "predict",
        help="score images with a trained checkpoint (0..10, higher is better)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders")
    p.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) written by training")
    p.add_argument("--out", required=True, help="CSV to write (path,score,error)")
    p.add_argument("--crops", type=int, default=5, help="random crops averaged per image")
    p.add_argument("--center", action="store_true", help="one centre crop instead")
    p.add_argument("--crop-size", type=int, default=None, help="default: the checkpoint's")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--workers", type=int, default=0, help="decoding worker processes")
    p.add_argument("--seed", type=int, default=0, help="seed of the crop positions")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="largest image (width x height) to open; larger ones are reported as errors",
    )
    p.set_defaults(func=run)
