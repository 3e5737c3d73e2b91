"""The ``syndr`` console script: one subcommand per capability.

Each subcommand lives in its own module exposing ``register(subparsers)`` which adds a
parser whose ``func`` attribute takes the parsed ``argparse.Namespace`` and returns an exit
code. Modules are imported lazily so ``syndr --help`` stays fast and a missing optional
part never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> module providing ``register(subparsers)``.
SUBCOMMANDS: dict[str, str] = {
    "data": "syndr_lightning.data.cli",
    "distort": "syndr_lightning.distort.cli",
    "reshape": "syndr_lightning.reshape.cli",
    "predict": "syndr_lightning.inference.cli",
    "export": "syndr_lightning.inference.export_cli",
    "umap": "syndr_lightning.viz.cli",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand whose module is importable
    (only the subcommand ``only`` when given, so one command does not import the others)."""
    parser = argparse.ArgumentParser(
        prog="syndr",
        description="SynDR-IQA tools. Training: python -m syndr_lightning +experiment=NAME",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # part not built (yet): hide it
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syndr`` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
