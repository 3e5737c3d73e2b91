"""What every ``syndr`` subcommand shares: one progress flag, exit codes, ``--out -``.

Exit status everywhere: 0 success, 1 bad data or input (a dataset, image, checkpoint or
feature file that is missing or wrong), 2 usage or configuration (argparse's own usage
errors are 2 as well). Only the standard library is imported here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from syndr_lightning.utils.errors import exit_code as error_exit_code

__all__ = [
    "EXIT_DATA",
    "EXIT_USAGE",
    "add_progress_flag",
    "add_scoring_options",
    "check_scoring_options",
    "error_exit_code",
    "write_output",
]

EXIT_DATA = 1
EXIT_USAGE = 2
#: Largest ``--crop-size`` of predict/eval: one crop of 2048 px is 48 MiB as float32
#: (models are trained at 224-512 px); larger ones would allocate gigabytes per batch.
MAX_CROP_SIZE = 2048


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` (hides progress bars); the older ``--quiet`` is a hidden alias."""
    parser.add_argument(
        "--no-progress",
        dest="no_progress",
        action="store_true",
        help="hide progress bars (they go to stderr)",
    )
    parser.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS)


def add_scoring_options(p: argparse.ArgumentParser) -> None:
    """How a checkpoint scores images (``syndr predict`` and ``syndr eval``): crops, device."""
    p.add_argument("--crops", type=int, default=5, help="random crops averaged per image")
    p.add_argument("--center", action="store_true", help="one centre crop instead")
    p.add_argument("--crop-size", type=int, default=None, help="default: the checkpoint's")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--workers", type=int, default=0, help="decoding worker processes")
    p.add_argument("--seed", type=int, default=0, help="seed of the crop positions")


def check_scoring_options(args: argparse.Namespace) -> None:
    """Range-check the options of :func:`add_scoring_options` before any work
    (ConfigError, exit 2, naming the flag)."""
    from syndr_lightning.utils.errors import ConfigError

    limits = {
        "crops": ("--crops", 1, None),
        "crop_size": ("--crop-size", 1, MAX_CROP_SIZE),
        "batch_size": ("--batch-size", 1, None),
        "workers": ("--workers", 0, None),
    }
    for key, (flag, lo, hi) in limits.items():
        value = getattr(args, key, None)
        if value is None:
            continue
        if value < lo or (hi is not None and value > hi):
            allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise ConfigError(f"{flag} {value} is out of range; allowed: {allowed}")


def write_output(out: str | Path, data: Any, *, as_json: bool = False) -> None:
    """Write ``data`` (text, or JSON with ``as_json``) to ``out``; ``-`` is stdout.

    Files are written atomically (temporary file + rename).
    """
    from syndr_lightning.utils.io import atomic_open, check_output_file, dumps_json

    text = dumps_json(data, indent=2, sort_keys=False) + "\n" if as_json else str(data)
    if str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    check_output_file(out)
    with atomic_open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
