"""``syndr sweep``: tables of Hydra multiruns.

    syndr sweep collect logs/syn2auth/multiruns/<date>_<time>    # mean ± std over seeds
    syndr sweep collect DIR --all                                 # every val/test metric
    syndr sweep intra logs/intra/multiruns/<date>_<time>          # medians over seeds

Both write their table atomically as Markdown and CSV into the sweep folder (or --out).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_collect_arguments", "add_intra_arguments", "register"]


def add_collect_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``syndr sweep collect`` (and experiments/collect_sweep.py)."""
    p.add_argument("multirun_dir", help="the folder Hydra printed for the -m run")
    p.add_argument("--out", default=None, help="output folder (default: multirun_dir)")
    p.add_argument("--name", default="sweep_table", help="file stem (default sweep_table)")
    p.add_argument(
        "--metrics",
        default=None,
        help="comma list of metrics (default: the headline val/srcc, val/plcc and "
        "test/<set>/srcc, test/<set>/plcc)",
    )
    p.add_argument("--all", action="store_true", help="every val/* and test/* metric")
    p.add_argument("--keys", default=None, help="comma list of row keys (default: swept)")
    p.add_argument("--seed-key", default="seed", help="replicate key (default seed)")
    p.add_argument("--digits", type=int, default=4, help="decimals in the Markdown table")


def add_intra_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``syndr sweep intra`` (and experiments/collect_intra.py)."""
    p.add_argument("multirun_dir", help="the folder Hydra printed for the intra sweep")
    p.add_argument("--out", default=None, help="output folder (default: multirun_dir)")
    p.add_argument("--digits", type=int, default=4, help="decimals in the table")


def _collect(args: argparse.Namespace) -> int:
    from syndr_lightning.sweep.collect import run

    return run(args)


def _intra(args: argparse.Namespace) -> int:
    from syndr_lightning.sweep.intra import run

    return run(args)


def register(subparsers: Any) -> None:
    """Add ``syndr sweep {collect,intra}``."""
    p = subparsers.add_parser(
        "sweep", help="tables of Hydra multiruns (collect, intra)", description=__doc__
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = p.add_subparsers(dest="sweep_command", metavar="TOOL")
    c = sub.add_parser(
        "collect",
        help="paper-style table of a multirun: mean ± std over seeds per swept value",
        description="Paper-style table of a multirun: one row per swept value, each cell "
        "mean ± sample std over seeds; headline metrics unless --all or --metrics.",
    )
    add_collect_arguments(c)
    c.set_defaults(func=_collect, command_name="syndr sweep collect")
    i = sub.add_parser(
        "intra",
        help="intra-dataset medians (min, max) over seeds",
        description="Median, min and max over seeds of SRCC and PLCC per test set and "
        "checkpoint rule of an intra-dataset sweep (the paper's protocol).",
    )
    add_intra_arguments(i)
    i.set_defaults(func=_intra, command_name="syndr sweep intra")
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])
