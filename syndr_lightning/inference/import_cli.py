"""``syndr import``: turn the authors' released model into a checkpoint of this framework.

    syndr import kadid-10k_model_best.pth.tar --out syndr_livec.ckpt
    syndr predict --ckpt syndr_livec.ckpt photo.jpg --out -

SRC is the reference code's ``<dataset>_model_best.pth.tar`` (or a bare state dict with
the same keys), read with ``weights_only=True``. The checkpoint written to ``--out``
records the protocol (backbone, label scale, training set, target) and works with
``syndr predict``, ``syndr eval``, ``syndr export`` and ``load_model``.
"""

from __future__ import annotations

import argparse
from typing import Any

from syndr_lightning.utils.errors import SyndrError, report_error
from syndr_lightning.utils.io import dumps_json

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Body of ``syndr import``; returns the exit code."""
    from syndr_lightning.inference.released import import_released
    from syndr_lightning.utils.io import check_output_file

    try:
        check_output_file(args.out)
        protocol = import_released(
            args.src, args.out, training_set=args.training_set, target=args.target
        )
    except SyndrError as exc:
        return report_error(exc, "syndr import")
    if args.json:
        print(dumps_json({"out": str(args.out), **protocol}))
        return 0
    target = protocol["target"] or "unknown target (--target)"
    print(
        f"imported {protocol['file']} ({protocol['backbone']}, trained on "
        f"{protocol['training_set']} for {target}) -> {args.out}"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add the ``import`` subcommand."""
    p = subparsers.add_parser(
        "import",
        help="convert the authors' released .pth.tar into a checkpoint (predict/eval/export)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", metavar="SRC", help="<dataset>_model_best.pth.tar or a state dict")
    p.add_argument("--out", required=True, help="checkpoint (.ckpt) to write")
    p.add_argument("--training-set", default=None, help="default: from the file name (kadid-10k)")
    p.add_argument(
        "--target",
        default=None,
        help="the test set it was trained for (livec, koniq10k, bid, pipal1..6, ...); "
        "default: from the run folder name '..._cross_<target>_...'",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
