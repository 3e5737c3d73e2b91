"""``syndr eval``: a checkpoint's SRCC, PLCC, KRCC and logistic PLCC on a labelled dataset.

    syndr eval --ckpt run/checkpoints/epoch_017.ckpt --data livec /datasets/livec

Prints the metrics with the protocol (checkpoint, crops, dataset) and saves them as JSON
(``--out``, default ``eval_<CHECKPOINT>_<DATASET>_<digest>.json`` in the working
directory, named after the checkpoint and the data set so that two evaluations never
overwrite each other; ``--out -`` prints the JSON on stdout with progress on stderr). Exit status: 0 ok, 1 bad data or checkpoint,
2 usage or config. Only argparse is imported at the top.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from syndr_lightning.utils.cliopts import (
    add_progress_flag,
    add_scoring_options,
    check_scoring_options,
    write_output,
)
from syndr_lightning.utils.io import dumps_json

__all__ = ["default_out", "register", "run"]


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def default_out(ckpt: str, name: str, root: str, options: dict[str, Any] | None = None) -> str:
    """``eval_<run>-<checkpoint>_<dataset>[-<root>]_<digest>.json``: readable (the run
    folder and checkpoint file, the loader and its root's name) and unique (a digest of
    the resolved checkpoint path, root and loader options)."""
    ck, data = Path(ckpt).expanduser(), Path(root).expanduser()
    ck_label = ck.stem
    if ck.parent.name == "checkpoints" and ck.parent.parent.name:
        ck_label = f"{ck.parent.parent.name}-{ck_label}"
    data_label = name if data.stem in (name, "") else f"{name}-{data.stem}"
    identity = json.dumps(
        [str(ck.resolve()), name, str(data.resolve()), options or {}], sort_keys=True, default=str
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"eval_{_safe(ck_label)}_{_safe(data_label)}_{digest}.json"


def run(args: argparse.Namespace) -> int:
    """Body of ``syndr eval``; returns the exit code."""
    from syndr_lightning.inference.evaluate import evaluate_checkpoint, format_report
    from syndr_lightning.utils.errors import SyndrError, report_error
    from syndr_lightning.utils.io import check_output_file

    name, root = args.data
    out = args.out or default_out(args.ckpt, name, root, dict(args.option or []))
    try:
        check_scoring_options(args)  # ranges and the output path, before any image is scored
        if out != "-":
            check_output_file(out)
        result = evaluate_checkpoint(
            args.ckpt,
            name,
            root,
            options=dict(args.option or []),
            crops=args.crops,
            crop_size=args.crop_size,
            center=args.center,
            device=args.device,
            batch_size=args.batch_size,
            workers=args.workers,
            seed=args.seed,
            progress=not args.no_progress,
        )
        write_output(out, result, as_json=True)
    except SyndrError as exc:
        return report_error(exc, "syndr eval")
    if out == "-":
        return 0
    if args.json:
        print(dumps_json(result, indent=2))
    else:
        print(format_report(result) + f"saved: {out}", end="\n")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``eval`` subcommand."""
    p = subparsers.add_parser(
        "eval",
        help="SRCC/PLCC/KRCC/PLCC-log of a checkpoint on a labelled dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) written by training")
    p.add_argument(
        "--data", nargs=2, required=True, metavar=("NAME", "ROOT"), help="dataset name and folder"
    )
    p.add_argument(
        "--option",
        action="append",
        type=_option,
        metavar="KEY=VALUE",
        help="dataset loader option (repeatable), e.g. --option refs=all",
    )
    p.add_argument(
        "--out",
        default=None,
        help="JSON to write (default eval_CKPT_NAME_DIGEST.json; - = stdout)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_scoring_options(p)
    add_progress_flag(p)
    p.set_defaults(func=run)
