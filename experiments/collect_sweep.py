#!/usr/bin/env python
"""Collect a Hydra multirun directory into paper-style tables (Markdown + CSV).

    python experiments/collect_sweep.py logs/syn2auth/multiruns/2026-01-01_12-00-00
    python experiments/collect_sweep.py DIR --metrics val/srcc,val/plcc --out docs/sweeps

One row per value of the swept parameter(s); each cell is mean ± sample std over seeds.
Both files are written atomically to DIR (or --out) as <name>.md and <name>.csv.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from syndr_lightning.reporting import SEED_KEY, collect
from syndr_lightning.utils.errors import SyndrError


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, collect the sweep, print the Markdown table; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("multirun_dir", help="the folder Hydra printed for the -m run")
    parser.add_argument("--out", default=None, help="output folder (default: multirun_dir)")
    parser.add_argument("--name", default="sweep_table", help="file stem (default sweep_table)")
    parser.add_argument("--metrics", default=None, help="comma list (default: all val/*, test/*)")
    parser.add_argument("--keys", default=None, help="comma list of row keys (default: swept)")
    parser.add_argument("--seed-key", default=SEED_KEY, help="replicate key (default seed)")
    parser.add_argument("--digits", type=int, default=4, help="decimals in the Markdown table")
    args = parser.parse_args(argv)
    try:
        summary = collect(
            args.multirun_dir,
            out_dir=args.out,
            metrics=_split(args.metrics),
            keys=_split(args.keys),
            seed_key=args.seed_key,
            name=args.name,
            digits=args.digits,
        )
    except SyndrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.markdown_path.read_text(encoding="utf-8"), end="")
    for path in summary.failed_dirs:
        print(f"warning: no metrics.json in {path} (job failed or still running)", file=sys.stderr)
    print(f"wrote {summary.markdown_path} and {summary.csv_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
