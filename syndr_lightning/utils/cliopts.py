"""What every ``syndr`` subcommand shares: one progress flag, exit codes, ``--out -``.

Exit status everywhere: 0 success, 1 bad data or input (a dataset, image, checkpoint or
feature file that is missing or wrong), 2 usage or configuration (argparse's own usage
errors are 2 as well). Only the standard library is imported here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from syndr_lightning.utils.errors import exit_code as error_exit_code

__all__ = [
    "EXIT_DATA",
    "EXIT_USAGE",
    "add_progress_flag",
    "error_exit_code",
    "write_output",
]

EXIT_DATA = 1
EXIT_USAGE = 2


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` (hides progress bars); the older ``--quiet`` is a hidden alias."""
    parser.add_argument(
        "--no-progress",
        dest="no_progress",
        action="store_true",
        help="hide progress bars (they go to stderr)",
    )
    parser.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS)


def write_output(out: str | Path, data: Any, *, as_json: bool = False) -> None:
    """Write ``data`` (text, or JSON with ``as_json``) to ``out``; ``-`` is stdout.

    Files are written atomically (temporary file + rename).
    """
    text = json.dumps(data, indent=2, sort_keys=False) + "\n" if as_json else str(data)
    if str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from syndr_lightning.utils.io import atomic_open

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
