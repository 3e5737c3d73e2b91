"""The ``syndr`` console script: one subcommand per capability.

Each subcommand lives in its own module exposing ``register(subparsers)`` which adds a
parser whose ``func`` attribute takes the parsed ``argparse.Namespace`` and returns an exit
code. Modules are imported lazily so ``syndr --help`` stays fast and a missing optional
part never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

from syndr_lightning.utils.errors import SyndrError, report_error

# name -> module providing ``register(subparsers)``.
SUBCOMMANDS: dict[str, str] = {
    "data": "syndr_lightning.data.cli",
    "distort": "syndr_lightning.distort.cli",
    "reshape": "syndr_lightning.reshape.cli",
    "predict": "syndr_lightning.inference.cli",
    "export": "syndr_lightning.inference.export_cli",
    "import": "syndr_lightning.inference.import_cli",
    "umap": "syndr_lightning.viz.cli",
    "eval": "syndr_lightning.inference.eval_cli",
    "reproduce": "syndr_lightning.paper.cli",
    "sweep": "syndr_lightning.sweep.cli",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand whose module is importable
    (only the subcommand ``only`` when given, so one command does not import the others)."""
    from syndr_lightning import __version__

    parser = argparse.ArgumentParser(
        prog="syndr",
        description="SynDR-IQA tools. Exit status: 0 ok, 1 bad data/input, 2 usage/config.",
    )
    parser.add_argument("--version", action="version", version=f"syndr-lightning {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser(
        "train",
        help="train (Hydra): syndr train [+experiment=NAME] [key=value ...]; same as syndr-train",
        add_help=False,
    )
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
    _user_facing(parser)
    return parser


#: Sentences of module docstrings meant for developers, not for ``--help``.
_DEVELOPER = re.compile(r"[^.;]*(?:This module|argparse|syndr_lightning\.[\w.]+)[^.;]*[.;]\s*")


def user_text(text: str | None) -> str | None:
    """A docstring as help text: no reST backticks, no sentences meant for developers."""
    if not text:
        return text
    text = _DEVELOPER.sub("", text).replace("``", "")
    text = re.sub(r";(\s*(?:\n\s*\n|$))", r".\1", text)  # a clause was removed after it
    return re.sub(r"[ \t]*\n(?:[ \t]*\n)+", "\n\n", text).strip()


def _user_facing(parser: argparse.ArgumentParser) -> None:
    """Clean the description, epilog and argument help of ``parser`` and its subparsers."""
    parser.description = user_text(parser.description)
    parser.epilog = user_text(parser.epilog)
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            action.help = user_text(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = user_text(choice.help)
            for child in action.choices.values():
                _user_facing(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syndr`` script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    from syndr_lightning.utils.errors import ConfigError
    from syndr_lightning.utils.images import max_image_pixels

    try:  # a malformed $SYNDR_MAX_IMAGE_PIXELS: refused before any work
        max_image_pixels()
    except ConfigError as exc:
        return report_error(exc, "syndr")
    if args_list[:1] == ["train"]:
        return train(args_list[1:])
    parser = build_parser(args_list[0] if args_list and args_list[0] in SUBCOMMANDS else None)
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except (ModuleNotFoundError, SyndrError) as exc:  # one line, the exit-code table
        return report_error(exc, f"syndr {args.command}")


def train(argv: Sequence[str]) -> int:
    """``syndr train ...``: hand the arguments to the Hydra entry point (``syndr-train``)."""
    from syndr_lightning.__main__ import main as hydra_main

    saved = sys.argv
    sys.argv = ["syndr-train", *argv]
    try:
        hydra_main()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
