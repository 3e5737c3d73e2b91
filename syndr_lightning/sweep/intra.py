"""Median SRCC/PLCC over the seeds of an intra-dataset sweep (the paper's protocol).

    python -m syndr_lightning +experiment=intra          # 10 seeds, prints its folder
    syndr sweep intra logs/intra/multiruns/<date>_<time> [--out DIR]

For every test set and checkpoint rule (``test`` = the run's selection rule: the last
epoch under the paper's 80/20 protocol, best val/srcc with a validation split;
``test_last`` = last epoch) prints the median, min and max over seeds of SRCC and PLCC, with the protocol
(seeds, crops, reshaping, git SHA), and writes ``intra_results.md`` / ``.csv``
atomically into the sweep folder (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syndr_lightning.protocol import Protocol
from syndr_lightning.reporting import (
    JobRecord,
    find_jobs,
    read_yaml,
    varying_keys,
    write_table_report,
)
from syndr_lightning.utils.errors import ConfigError, InputError, SyndrError, report_error

RULES = {"test": "best val/srcc", "test_last": "last epoch", "test_best_on_test": "best on TEST"}


def _seed(job: JobRecord) -> int | None:
    if "seed" in job.overrides:
        return int(job.overrides["seed"])
    cfg = _job_config(job)
    return int(cfg["seed"]) if "seed" in cfg else None


def _selection(job: JobRecord) -> str:
    """The selection rule the job recorded in metrics.json (``val`` when not recorded)."""
    try:
        info = json.loads((job.path / "metrics.json").read_text(encoding="utf-8")).get("info")
    except (OSError, ValueError, AttributeError):
        return "val"
    return str((info or {}).get("selection", "val"))


def _job_config(job: JobRecord) -> dict[str, Any]:
    file = job.path / ".hydra" / "config.yaml"
    if not file.is_file():
        return {}
    data = read_yaml(file)
    return data if isinstance(data, dict) else {}


def check_seeds_only(jobs: Sequence[JobRecord], what: str) -> None:
    """A summary over seeds pools jobs that differ in the seed only: ConfigError naming
    the first other key that varies (and its values)."""
    varying = varying_keys(jobs)
    if varying:
        key = varying[0]
        values = sorted({repr(j.overrides.get(key)) for j in jobs})
        raise ConfigError(
            f"the sweep's jobs differ in {key} ({', '.join(values)}), not only in the seed; "
            f"{what} pools seeds only: collect it per setting with `syndr sweep collect`, "
            "or point it at a sweep over seeds alone"
        )


def table(jobs: Sequence[JobRecord]) -> pd.DataFrame:
    """One row per (dataset, rule): median/min/max SRCC and PLCC over the jobs' seeds."""
    check_seeds_only(jobs, "`syndr sweep intra`")
    done = [j for j in jobs if j.ok]
    if not done:
        raise InputError(
            "no job of the sweep wrote metrics.json (all crashed or still running); "
            "check the jobs' logs and rerun them"
        )
    rows = []
    keys = sorted({k for j in done for k in (j.metrics or {})})
    pairs = sorted(
        {
            (k.split("/")[0], k.split("/")[1])
            for k in keys
            if k.count("/") == 2 and k.split("/")[0] in RULES
        }
    )
    for prefix, name in pairs:
        srcc, plcc, seeds = [], [], []
        for j in done:
            m = j.metrics or {}
            s, p = m.get(f"{prefix}/{name}/srcc"), m.get(f"{prefix}/{name}/plcc")
            if s is None or p is None:
                continue
            srcc.append(s)
            plcc.append(p)
            seeds.append(_seed(j))
        if not srcc:
            continue
        checkpoint = RULES[prefix]
        if prefix == "test" and all(_selection(j) == "last" for j in done):
            checkpoint = "last epoch"
        rows.append(
            {
                "dataset": name,
                "checkpoint": checkpoint,
                "srcc_median": float(np.median(srcc)),
                "plcc_median": float(np.median(plcc)),
                "srcc_min": float(np.min(srcc)),
                "srcc_max": float(np.max(srcc)),
                "plcc_min": float(np.min(plcc)),
                "plcc_max": float(np.max(plcc)),
                "n_seeds": len(srcc),
                "seeds": " ".join(str(s) for s in sorted(x for x in seeds if x is not None)),
            }
        )
    if not rows:
        raise InputError(
            "the jobs' metrics hold no test/<dataset>/srcc and plcc; was the sweep run with "
            "test sets (data.test_fraction > 0 or data.test) and test=true?"
        )
    return pd.DataFrame(rows)


def protocol(jobs: Sequence[JobRecord]) -> str:
    """One line: seeds, split, crops, reshaping settings, git SHAs of the jobs."""
    cfg = next((_job_config(j) for j in jobs if j.ok), {})
    data = cfg.get("data", {}) or {}
    shas = set()
    for j in jobs:
        file = j.path / "metrics.json"
        if file.is_file():
            try:
                info = json.loads(file.read_text(encoding="utf-8")).get("info", {}) or {}
            except (ValueError, AttributeError):
                info = {}
            shas.add(str(info.get("git_sha", "unknown"))[:12])
    seeds = sorted(s for s in (_seed(j) for j in jobs if j.ok) if s is not None)
    return (
        f"median over {len(seeds)} seeds {seeds}; split by reference: test "
        f"{data.get('test_fraction', '?')}, val {data.get('val_fraction', '?')}; eval "
        f"{data.get('eval_crops', '?')} {data.get('eval_crop_mode', '?')} crops of "
        f"{data.get('crop_size', '?')} px (held-out KADID: "
        f"{data.get('heldout_crop_mode', '?')}); {Protocol.from_config(cfg).reshaping()}; "
        f"git {', '.join(sorted(shas)) or 'unknown'}"
    )


def job_counts(jobs: Sequence[JobRecord]) -> str:
    """One line: how many jobs finished, diverged, failed (the last two never counted)."""
    diverged = sum(j.status == "diverged" for j in jobs)
    done = sum(j.ok for j in jobs)
    return (
        f"Jobs: {len(jobs)}: {done} finished, {diverged} diverged, "
        f"{len(jobs) - done - diverged} failed or unfinished (only finished jobs are in the "
        "medians).\n"
    )


def markdown(df: pd.DataFrame, caption: str, digits: int = 4, counts: str = "") -> str:
    """The table as Markdown, followed by the protocol line (and the job counts)."""
    head = "| dataset | checkpoint | SRCC (median) | PLCC (median) | SRCC range | seeds |"
    lines = [head, "|---|---|---|---|---|---|"]
    for r in df.itertuples():
        lines.append(
            f"| {r.dataset} | {r.checkpoint} | {r.srcc_median:.{digits}f} | "
            f"{r.plcc_median:.{digits}f} | {r.srcc_min:.{digits}f}..{r.srcc_max:.{digits}f} "
            f"| {r.n_seeds} |"
        )
    return "\n".join(lines) + f"\n\nProtocol: {caption}\n{counts}"


def main(argv: Sequence[str] | None = None) -> int:
    """``experiments/collect_intra.py``: the same as ``syndr sweep intra``."""
    from syndr_lightning.sweep.cli import add_intra_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_intra_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Collect the sweep, print and write the table; return the exit code."""
    try:
        jobs = find_jobs(args.multirun_dir)
        df = table(jobs)
        text = markdown(df, protocol(jobs), args.digits, job_counts(jobs))
        out = Path(args.out or args.multirun_dir)
        write_table_report(out, "intra_results", text, df)
    except SyndrError as exc:  # 1 for data errors, 2 for usage (utils.errors.EXIT_CODES)
        return report_error(exc, getattr(args, "command_name", ""))
    print(text, end="")
    for j in jobs:
        if not j.ok:
            why = f" ({j.reason})" if j.reason else ""
            print(f"warning: {j.path}: {j.status}{why}; not counted", file=sys.stderr)
    return 0
