"""``syndr predict``: score image files and folders with a checkpoint, write a CSV.

    syndr predict --ckpt run/checkpoints/last.ckpt photos/ extra.jpg --out scores.csv

One row per file (``path,score,error``): ``score`` on 0..10 (higher is better), or empty
with the reason in ``error`` when the file fails the checks of ``syndr data check`` (it
cannot be decoded, its PNG CRC or JPEG structure is broken, it is smaller than 8x8 or
above the pixel limit, ``--max-pixels``); the other files go on. Folders are searched
recursively (symlinked sub-folders too); an entry with an image suffix that is not a
file (a dangling link, a FIFO, a folder named ``x.png``) is a row "skipped: <why>". The CSV is written atomically at the
end; ``--out -`` writes it to stdout (progress goes to stderr), ``--json`` prints the rows
as JSON. When no image at all could be scored an existing output file is kept as it was
(exit 1). Exit status: 0 ok, 1 bad input (no readable image, unreadable checkpoint),
2 usage or config.

This module imports only argparse at the top (``syndr predict --help`` is instant).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from syndr_lightning.utils.cliopts import (
    add_progress_flag,
    add_scoring_options,
    check_scoring_options,
    write_output,
)

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Body of ``syndr predict``; returns the exit code."""
    import pandas as pd

    from syndr_lightning.inference.api import collect_inputs, load_model
    from syndr_lightning.inference.predict import predict_files
    from syndr_lightning.utils.errors import SyndrError, report_error
    from syndr_lightning.utils.images import set_max_image_pixels
    from syndr_lightning.utils.io import check_output_file

    try:
        check_scoring_options(args)  # ranges, before any work
        if args.out != "-":  # a folder or a read-only file: refused before any work
            check_output_file(args.out)
        if args.max_pixels is not None:
            set_max_image_pixels(args.max_pixels)
        files, skipped = collect_inputs(args.inputs)
        scorer = load_model(
            args.ckpt,
            crops=args.crops,
            crop_size=args.crop_size,
            crop_mode="center" if args.center else "random",
            device=args.device,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        table = predict_files(scorer, files, workers=args.workers, progress=not args.no_progress)
        if skipped:  # every entry that was not scored is a row, with its reason
            extra = pd.DataFrame(
                {
                    "path": [p for p, _ in skipped],
                    "score": pd.array([None] * len(skipped), dtype="Float64"),
                    "error": [f"skipped: {why}" for _, why in skipped],
                }
            )
            table = pd.concat([table, extra], ignore_index=True)
        failed = int((table["error"] != "").sum())
        if failed == len(table) and args.out != "-" and Path(args.out).exists():
            print(
                f"syndr predict: error: none of the {len(table)} images could be scored (first: "
                f"{table['error'].iloc[0]}); {args.out} was left as it was",
                file=sys.stderr,
            )
            return 1
        if args.json:
            rows = [
                {"path": p, "score": None if s != s else float(s), "error": e}
                for p, s, e in zip(
                    table["path"], table["score"].astype("float64"), table["error"], strict=True
                )
            ]
            write_output(args.out, {"scores": rows}, as_json=True)
        else:
            write_output(args.out, table.to_csv(index=False, float_format="%.4f"))
    except SyndrError as exc:
        return report_error(exc, "syndr predict")
    print(
        f"scored {len(table) - failed} of {len(table)} images -> {args.out}"
        + (f" ({failed} unreadable: see the error column)" if failed else ""),
        file=sys.stderr if args.out == "-" else sys.stdout,
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
    p.add_argument("--out", required=True, help="CSV (or with --json: JSON) to write; - for stdout")
    p.add_argument("--json", action="store_true", help="write JSON rows instead of CSV")
    add_scoring_options(p)
    add_progress_flag(p)
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="largest image (width x height) to open; larger ones are reported as errors",
    )
    p.set_defaults(func=run)
