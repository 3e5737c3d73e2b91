"""``syndr export``: write a checkpoint as TorchScript, ONNX or a torch.export program.

    syndr export --ckpt run/checkpoints/last.ckpt --format onnx --out model.onnx

The exported model maps raw RGB crops ``[B,3,S,S]`` in 0..1 to scores ``[B]`` on 0..10;
see ``syndr_lightning.inference.export`` for the contract.
"""

from __future__ import annotations

import argparse
from typing import Any

from syndr_lightning.utils.errors import SyndrError, report_error
from syndr_lightning.utils.io import dumps_json

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    """Body of ``syndr export``; returns the exit code."""
    from syndr_lightning.inference.api import load_model
    from syndr_lightning.inference.export import check_opset, export_model
    from syndr_lightning.utils.io import check_output_file

    try:
        check_output_file(args.out)  # before the model is loaded: one line, nothing built
        if args.format == "onnx":
            check_opset(args.opset)
        scorer = load_model(args.ckpt, crop_size=args.crop_size, crops=1)
        out = export_model(
            scorer.module,
            args.format,
            args.out,
            crop_size=scorer.crop_size,
            source=str(args.ckpt),
            opset=args.opset,
        )
    except SyndrError as exc:
        return report_error(exc, "syndr export")
    if args.json:
        print(dumps_json({"format": args.format, "out": str(out), "crop_size": scorer.crop_size}))
        return 0
    print(
        f"exported {args.format} model (input [B,3,{scorer.crop_size},{scorer.crop_size}]) -> {out}"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint as TorchScript, ONNX or a torch.export program (.pt2)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ckpt", required=True, help="checkpoint (.ckpt) written by training")
    p.add_argument(
        "--format",
        required=True,
        choices=["torchscript", "onnx", "torch-export"],
        help="torch-export: a torch.export ExportedProgram (.pt2, torch.export.load)",
    )
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--crop-size", type=int, default=None, help="default: the checkpoint's")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset version")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)
