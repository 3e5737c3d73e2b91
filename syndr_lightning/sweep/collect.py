"""Collect a Hydra multirun directory into paper-style tables (Markdown + CSV).

    syndr sweep collect logs/syn2auth/multiruns/2026-01-01_12-00-00
    syndr sweep collect DIR --metrics val/srcc,val/plcc --out docs/sweeps
    syndr sweep collect DIR --all

One row per value of the swept parameter(s); each cell is mean ± sample std over seeds.
Default columns: the headline metrics (``val/srcc``, ``val/plcc``, then ``test/<set>/srcc``
and ``test/<set>/plcc`` per test set in the runs' order); ``--all``: every metric.
Both files are written atomically to DIR (or --out) as <name>.md and <name>.csv.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from syndr_lightning.reporting import JobRecord, collect, find_jobs
from syndr_lightning.utils.errors import SyndrError, report_error


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def headline_metrics(jobs: Sequence[JobRecord]) -> list[str]:
    """``val/srcc``, ``val/plcc``, then SRCC and PLCC of each test set (the runs' order)."""
    seen: list[str] = []
    for job in jobs:
        for name in job.metrics or {}:
            if name not in seen:
                seen.append(name)
    val = [m for m in ("val/srcc", "val/plcc") if m in seen]
    sets = [
        m[len("test/") : -len("/srcc")]
        for m in seen
        if m.startswith("test/") and m.endswith("/srcc")
    ]
    test = [f"test/{d}/{k}" for d in sets for k in ("srcc", "plcc") if f"test/{d}/{k}" in seen]
    return val + test


def run(args: argparse.Namespace) -> int:
    """Collect the sweep of ``args`` (see ``sweep.cli``), print the Markdown table."""
    try:
        metrics = _split(args.metrics)
        if metrics is None and not args.all:
            metrics = headline_metrics(find_jobs(args.multirun_dir)) or None
        summary = collect(
            args.multirun_dir,
            out_dir=args.out,
            metrics=metrics,
            keys=_split(args.keys),
            seed_key=args.seed_key,
            name=args.name,
            digits=args.digits,
        )
    except SyndrError as exc:  # 1 for data errors, 2 for usage (utils.errors.EXIT_CODES)
        return report_error(exc, getattr(args, "command_name", ""))
    print(summary.markdown_path.read_text(encoding="utf-8"), end="")
    for job in summary.jobs:  # diverged, failed, preempted or unfinished: never in a cell
        if not job.ok:
            why = f" ({job.reason})" if job.reason else ""
            print(f"warning: {job.path}: {job.status}{why}; not counted", file=sys.stderr)
    print(f"wrote {summary.markdown_path} and {summary.csv_path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``experiments/collect_sweep.py``: the same as ``syndr sweep collect``."""
    from syndr_lightning.sweep.cli import add_collect_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_collect_arguments(parser)
    return run(parser.parse_args(argv))
