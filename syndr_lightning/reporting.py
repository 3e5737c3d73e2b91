"""Run reporting: the results table of a run, per-job metric files, and the multirun
tables read back from them.

A Hydra multirun directory holds one folder per job (``0/``, ``1/``, ... for the local
launcher and submitit alike), each with ``.hydra/config.yaml`` and ``.hydra/overrides.yaml``
written by Hydra and ``metrics.json`` written by :func:`save_job_metrics`. The functions
below read such a tree back into one table per swept parameter with mean and spread over
seeds. Free of Lightning; pandas and PyYAML only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from syndr_lightning.run_status import STATUS_FILE
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.io import atomic_open, finite_json

METRICS_FILE = "metrics.json"
"""Name of the per-job metrics file, next to Hydra's ``.hydra/`` folder."""


JOB_STATUSES = ("finished", "diverged", "failed", "preempted")

SEED_KEY = "seed"
"""Override key treated as a replicate (averaged over), not as a swept parameter."""

# Overrides that select a config rather than set a hyper-parameter never form table rows.
_NEVER_SWEPT_PREFIXES = ("hydra.", "hydra/")


def plain_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Convert tensors / numpy scalars to floats; drop values that are not numbers."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            out[str(key)] = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError):
            continue
    return out


def metrics_digest(metrics: Mapping[str, float | None], identity: Mapping[str, Any]) -> str:
    """SHA-256 over the metrics and the run's identity (canonical JSON): what makes a
    ``metrics.json`` vouch for itself (an edited number or identity no longer matches)."""
    import hashlib

    body = json.dumps(
        {"metrics": dict(metrics), "identity": dict(identity)},
        sort_keys=True,
        allow_nan=False,
        separators=(",", ":"),
        default=str,
    )
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


def digest_matches(payload: Mapping[str, Any]) -> bool:
    """Whether a ``metrics.json`` payload carries metrics, identity and the digest
    :func:`metrics_digest` gives for them (False for an edited or malformed file)."""
    metrics, identity = payload.get("metrics"), payload.get("identity")
    if not isinstance(metrics, dict) or not isinstance(identity, dict):
        return False
    try:
        return payload.get("digest") == metrics_digest(metrics, identity)
    except (TypeError, ValueError):
        return False


def save_job_metrics(
    metrics: Mapping[str, Any],
    output_dir: str | os.PathLike[str],
    extra: Mapping[str, Any] | None = None,
    identity: Mapping[str, Any] | None = None,
) -> Path:
    """Write a run's final metrics to ``output_dir/metrics.json`` atomically; return the path.

    ``extra`` adds non-metric facts (status, git SHA, ...) under the key ``info``. A
    non-finite value is written as ``null`` and named under ``info.nonfinite`` (strict
    JSON: never a bare ``NaN``). With ``identity`` (task, data, backbone, protocol,
    seed), the file also carries it and :func:`metrics_digest` over both.
    """
    path = Path(output_dir) / METRICS_FILE
    values: dict[str, float | None] = {}
    nonfinite: list[str] = []
    for key, value in plain_metrics(metrics).items():
        if math.isfinite(value):
            values[key] = value
        else:
            values[key] = None
            nonfinite.append(key)
    payload: dict[str, Any] = {"metrics": values}
    info = dict(extra or {})
    if nonfinite:
        info["nonfinite"] = nonfinite
    if info:
        payload["info"] = info
    if identity is not None:
        payload["identity"] = finite_json(json.loads(json.dumps(identity, default=str)))
        payload["digest"] = metrics_digest(values, payload["identity"])
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True, allow_nan=False, default=str)
        fh.write("\n")
    return path


def read_json_file(
    file: Path, expected: str, fix: str = "Delete it and rerun that job."
) -> dict[str, Any]:
    """A JSON object from ``file``; InputError (one line naming the file and what to do)
    when it is unreadable, not UTF-8, not JSON or not a mapping."""
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        problem = "is not UTF-8 text"
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON ({exc.msg})"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    else:
        if isinstance(payload, dict):
            return payload
        problem = f"holds a {type(payload).__name__}, not a mapping"
    raise InputError(f"{file} {problem}; expected {expected}. Delete it and rerun that job.")


def read_run_status(folder: Path) -> dict[str, Any] | None:
    """The run's ``run_status.json`` (None when it wrote none); a malformed record or an
    unknown status is an InputError naming the file."""
    file = folder / STATUS_FILE
    if not file.is_file():
        return None
    record = read_json_file(file, "the run's end record {'status': ..., 'exit_code': ...}")
    if record.get("status") not in JOB_STATUSES:
        raise InputError(
            f"{file} has status {record.get('status')!r}; expected one of "
            f"{', '.join(JOB_STATUSES)}. Delete it and rerun that job."
        )
    return record


@dataclass
class JobRecord:
    """One job of a multirun: its folder, its overrides (``key -> value``), its metrics
    and how it ended (``finished``, ``diverged``, ``failed``, ``preempted``)."""

    path: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] | None = None
    status: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "finished" if self.metrics is not None else "failed"

    @property
    def ok(self) -> bool:
        """Whether the job finished with metrics (diverged and failed jobs never count)."""
        return self.metrics is not None and self.status == "finished"


def _parse_value(text: str) -> Any:
    """Parse an override's value as YAML (``5`` -> 5, ``0.1`` -> 0.1, ``all`` -> 'all')."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(lines: Iterable[str]) -> dict[str, Any]:
    """Turn Hydra override strings (``+reshape.k=5``) into ``{"reshape.k": 5}``."""
    out: dict[str, Any] = {}
    for line in lines:
        text = str(line)
        if "=" not in text or text.startswith("~"):
            continue
        key, value = text.split("=", 1)
        out[key.lstrip("+")] = _parse_value(value)
    return out


def read_yaml(path: Path) -> Any:
    """A YAML file Hydra wrote; InputError (one line) when not UTF-8 or not YAML."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except UnicodeDecodeError:
        problem = "is not UTF-8 text"
    except yaml.YAMLError as exc:
        problem = f"is not valid YAML ({exc.__class__.__name__})"
    raise InputError(
        f"{path} {problem}; expected a file Hydra wrote. Delete the broken job folder or "
        "rerun that job."
    )


def _read_metrics(path: Path) -> dict[str, float] | None:
    """Read ``metrics.json``; ``None`` when the job left none (crashed or still running).
    A digest that does not match the numbers (an edited file) is an InputError."""
    file = path / METRICS_FILE
    if not file.is_file():
        return None
    payload = read_json_file(file, "{'metrics': {name: value}} as save_job_metrics writes it")
    metrics = payload.get("metrics")
    if not isinstance(metrics, dict):
        raise InputError(
            f"{file} has no 'metrics' mapping; expected {{'metrics': {{name: value}}}}. "
            "Delete it and rerun that job."
        )
    if "digest" in payload and not digest_matches(payload):
        raise InputError(
            f"{file} does not match its digest (edited by hand or damaged); delete it "
            "and rerun that job to get numbers the run vouches for."
        )
    return plain_metrics(metrics)


def _job_status(job_dir: Path, metrics: dict[str, float] | None) -> tuple[str, str]:
    """How a job ended: its ``run_status.json`` when present, else ``finished`` when it
    left metrics and ``failed`` (crashed or unfinished) when not."""
    record = read_run_status(job_dir)
    if record is not None:
        return str(record["status"]), str(record.get("reason") or "")
    return ("finished", "") if metrics is not None else ("failed", "no metrics.json")


def find_jobs(multirun_dir: str | os.PathLike[str]) -> list[JobRecord]:
    """Find every job folder (one holding ``.hydra/overrides.yaml``) under ``multirun_dir``."""
    root = Path(multirun_dir)
    if not root.is_dir():
        raise InputError(
            f"multirun directory {root} does not exist; expected the folder Hydra printed "
            "for a `-m` run (e.g. logs/<task_name>/multiruns/<date>_<time>)."
        )
    jobs: list[JobRecord] = []
    for overrides_file in sorted(root.rglob(".hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        if any(part.startswith(".") for part in job_dir.relative_to(root).parts):
            continue  # submitit's and atomic writers' hidden folders
        lines = read_yaml(overrides_file) or []
        if not isinstance(lines, list):
            raise InputError(
                f"{overrides_file} holds a {type(lines).__name__}, not a list of overrides; "
                "expected the file Hydra wrote. Delete the broken job folder or rerun that job."
            )
        metrics = _read_metrics(job_dir)
        status, reason = _job_status(job_dir, metrics)
        jobs.append(
            JobRecord(
                path=job_dir,
                overrides=parse_overrides(lines),
                metrics=metrics,
                status=status,
                reason=reason,
            )
        )
    if not jobs:
        raise InputError(
            f"no job folders under {root}; expected sub-folders with .hydra/overrides.yaml. "
            "Point at the multirun directory itself, not at one job or at logs/."
        )
    return jobs


def _sweeper_param_keys(multirun_dir: Path) -> list[str]:
    """Keys of ``hydra.sweeper.params`` in the sweep's ``multirun.yaml`` (if present)."""
    file = multirun_dir / "multirun.yaml"
    if not file.is_file():
        return []
    data = read_yaml(file) or {}
    params = ((data.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    return [str(k) for k in params]


def varying_keys(
    jobs: Sequence[JobRecord], seed_key: str = SEED_KEY, declared: Sequence[str] = ()
) -> list[str]:
    """Override keys whose value differs between jobs (the table's row keys), seed excluded.

    ``declared`` (the sweeper's params) is used when no key varies, e.g. a one-job sweep.
    """
    keys: list[str] = []
    for job in jobs:
        for key in job.overrides:
            if key not in keys:
                keys.append(key)
    varying = [
        key
        for key in keys
        if key != seed_key
        and not key.startswith(_NEVER_SWEPT_PREFIXES)
        and len({repr(job.overrides.get(key)) for job in jobs}) > 1
    ]
    if varying:
        return varying
    return [key for key in declared if key != seed_key and any(key in j.overrides for j in jobs)]


def _sweep_name(jobs: Sequence[JobRecord]) -> str:
    """``sweep_name`` of the first job's saved config (set by conf/hparams_search/*)."""
    for job in jobs:
        file = job.path / ".hydra" / "config.yaml"
        if file.is_file():
            data = read_yaml(file)
            if isinstance(data, dict) and data.get("sweep_name"):
                return str(data["sweep_name"])
    return ""


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool) or value is None:
        return (2, str(value))
    if isinstance(value, int | float):
        return (0, float(value))
    return (1, str(value))


def default_metrics(jobs: Sequence[JobRecord]) -> list[str]:
    """Validation and test metrics present in any job: ``val/srcc`` first, then sorted."""
    names = sorted({name for job in jobs if job.metrics for name in job.metrics})
    # Quality metrics only: bookkeeping such as ``val/epoch`` is no table column.
    chosen = [
        n for n in names if n.startswith(("val/", "test/")) and not n.endswith("/epoch")
    ] or names

    def order(name: str) -> tuple[int, str]:
        rank = 0 if name == "val/srcc" else 1 if name.startswith("val/") else 2
        return (rank, name)

    return sorted(chosen, key=order)


def summarise(
    jobs: Sequence[JobRecord],
    keys: Sequence[str],
    metrics: Sequence[str],
    seed_key: str = SEED_KEY,
) -> pd.DataFrame:
    """One row per value combination of ``keys``: mean, std, min, max and n over seeds.

    Columns: the keys, then ``<metric>/mean``, ``<metric>/std`` (sample std, NaN for one
    seed), ``<metric>/min``, ``<metric>/max``, and ``n`` (finished jobs), ``diverged``
    (jobs whose training diverged), ``failed`` (failed, preempted or unfinished jobs),
    ``seeds`` (the seeds that finished). Only finished jobs' metrics enter a cell.
    """
    if not metrics:
        raise InputError(
            "no metrics to tabulate: no job of the sweep wrote metrics.json. Check the "
            "jobs' logs (each job folder's *.log) for the error that stopped them."
        )
    groups: dict[tuple[str, ...], list[JobRecord]] = {}
    values: dict[tuple[str, ...], tuple[Any, ...]] = {}
    for job in jobs:
        row = tuple(job.overrides.get(k) for k in keys)
        ident = tuple(repr(v) for v in row)
        groups.setdefault(ident, []).append(job)
        values[ident] = row
    records: list[dict[str, Any]] = []
    for ident in sorted(groups, key=lambda i: tuple(_sort_key(v) for v in values[i])):
        members = groups[ident]
        done = [j for j in members if j.ok]
        rec: dict[str, Any] = {
            k: ("" if v is None else v) for k, v in zip(keys, values[ident], strict=True)
        }
        for name in metrics:
            series = pd.Series(
                [j.metrics[name] for j in done if j.metrics and name in j.metrics], dtype=float
            )
            rec[f"{name}/mean"] = series.mean() if len(series) else math.nan
            rec[f"{name}/std"] = series.std(ddof=1) if len(series) > 1 else math.nan
            rec[f"{name}/min"] = series.min() if len(series) else math.nan
            rec[f"{name}/max"] = series.max() if len(series) else math.nan
        rec["n"] = len(done)
        rec["diverged"] = sum(j.status == "diverged" for j in members)
        rec["failed"] = len(members) - len(done) - rec["diverged"]
        rec["seeds"] = " ".join(str(j.overrides.get(seed_key, "-")) for j in done)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def _fmt(value: float, digits: int) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _fmt_key(value: Any) -> str:
    """A swept value for a table cell: floats to 4 significant digits (CSV keeps them all)."""
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:.4g}"
    return str(value)


def _optuna_line(root: Path) -> str:
    """One line naming the Optuna study's best trial, when the sweep was an Optuna one."""
    file = root / "optimization_results.yaml"
    if not file.is_file():
        return ""
    data = read_yaml(file) or {}
    params = data.get("best_params") or {}
    value = data.get("best_value")
    if value is None:
        return ""
    shown = ", ".join(f"{k}={_fmt_key(v)}" for k, v in params.items())
    return f"Optuna best objective {float(value):.4f} at {shown}.\n"


def to_markdown(
    table: pd.DataFrame,
    keys: Sequence[str],
    metrics: Sequence[str],
    title: str = "",
    digits: int = 4,
) -> str:
    """Render a :func:`summarise` table as Markdown: ``mean ± std`` cells, best mean in bold."""
    lines: list[str] = []
    if title:
        lines += [f"### {title}", ""]
    header = [*keys, *metrics, "n", "diverged", "failed"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    best: dict[str, float] = {}
    # only rows whose every job finished compete for the bold (a row with a diverged or
    # failed job is incomplete: never ranked)
    complete = pd.Series(
        [
            int(r.get("diverged", 0) or 0) + int(r.get("failed", 0) or 0) == 0
            for _, r in table.iterrows()
        ],
        index=table.index,
        dtype=bool,
    )
    for name in metrics:
        col = table[f"{name}/mean"].where(complete)
        if col.notna().any() and col.nunique(dropna=True) > 1:  # no bold when all tie
            # Lower is better only for losses and errors; every IQA correlation is higher-better.
            lower = any(tag in name for tag in ("loss", "mae", "rmse", "error"))
            best[name] = float(col.min() if lower else col.max())
    for idx, row in table.iterrows():
        cells = [_fmt_key(row[k]) for k in keys]
        for name in metrics:
            mean, std = row[f"{name}/mean"], row[f"{name}/std"]
            text = _fmt(mean, digits)
            if not math.isnan(std):
                text += f" ± {_fmt(std, digits)}"
            ranked = name in best and bool(complete[idx]) and len(table) > 1
            if ranked and not math.isnan(mean) and mean == best[name]:
                text = f"**{text}**"
            cells.append(text)
        cells += [str(row["n"]), str(row.get("diverged", 0)), str(row["failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class SweepSummary:
    """What :func:`collect` found and wrote."""

    table: pd.DataFrame
    keys: list[str]
    metrics: list[str]
    n_jobs: int
    n_failed: int
    markdown_path: Path
    csv_path: Path
    failed_dirs: list[Path] = field(default_factory=list)
    jobs: list[JobRecord] = field(default_factory=list)


def write_table_report(
    out_dir: str | os.PathLike[str], name: str, markdown: str, table: pd.DataFrame
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.md`` (the text) and ``<name>.csv`` (the table), atomically."""
    md_path, csv_path = Path(out_dir) / f"{name}.md", Path(out_dir) / f"{name}.csv"
    with atomic_open(md_path, "w", encoding="utf-8") as fh:
        fh.write(markdown)
    with atomic_open(csv_path, "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False)
    return md_path, csv_path


def collect(
    multirun_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    seed_key: str = SEED_KEY,
    name: str = "sweep_table",
    digits: int = 4,
) -> SweepSummary:
    """Collect a multirun directory into ``<out_dir>/<name>.md`` and ``.csv`` (atomically).

    ``keys`` default to the overrides that vary between jobs (seed excluded); ``metrics``
    default to every ``val/*`` and ``test/*`` metric found. Jobs without ``metrics.json``
    count as failed and are listed, never silently dropped.
    """
    root = Path(multirun_dir)
    jobs = find_jobs(root)
    row_keys = list(keys) if keys else varying_keys(jobs, seed_key, _sweeper_param_keys(root))
    pooled = [k for k in varying_keys(jobs, seed_key) if k not in row_keys]
    if pooled:  # a cell is a summary over seeds: its jobs may differ in the seed only
        raise ConfigError(
            f"the jobs also differ in {pooled[0]}, which --keys leaves out: its cells would "
            f"pool different settings as seeds; add {pooled[0]} to --keys"
        )
    names = list(metrics) if metrics else default_metrics(jobs)
    missing = [m for m in names if not any(j.metrics and m in j.metrics for j in jobs)]
    if missing and any(j.ok for j in jobs):
        found = ", ".join(default_metrics(jobs)) or "none"
        raise ConfigError(  # a usage error: --metrics names what no job has
            f"metric(s) {', '.join(missing)} appear in no job's metrics.json under {root}; "
            f"found: {found}. Pass --metrics with names from that list."
        )
    table = summarise(jobs, row_keys, names, seed_key)
    out = Path(out_dir) if out_dir is not None else root
    md_path, csv_path = out / f"{name}.md", out / f"{name}.csv"
    failed = [j.path for j in jobs if not j.ok]
    diverged = sum(j.status == "diverged" for j in jobs)
    label = _sweep_name(jobs) or root.name
    title = f"Sweep {label}: " + (", ".join(row_keys) if row_keys else "one setting")
    text = to_markdown(table, row_keys, names, title=title, digits=digits)
    text += (
        f"\nmean ± sample std over the finished seeds; n = finished jobs per row (diverged "
        f"and failed jobs never enter a cell nor the bold); {len(jobs)} jobs: "
        f"{len(jobs) - len(failed)} finished, {diverged} diverged, "
        f"{len(failed) - diverged} failed or unfinished.\n"
    )
    text += _optuna_line(root)
    write_table_report(out, name, text, table)
    return SweepSummary(
        table=table,
        keys=row_keys,
        metrics=names,
        n_jobs=len(jobs),
        n_failed=len(failed),
        markdown_path=md_path,
        csv_path=csv_path,
        failed_dirs=failed,
        jobs=list(jobs),
    )


# ------------------------------------------------------------------ one run
def print_report(
    metrics: Mapping[str, float],
    names: Sequence[str],
    rows: Sequence[tuple[str, str]],
    caption: str,
) -> None:
    """Print val/test metrics per selection rule as a rich table."""
    from rich.console import Console
    from rich.table import Table

    from syndr_lightning.metrics import METRIC_NAMES

    table = Table(title="SynDR-IQA results", caption=caption, caption_justify="left")
    table.add_column("dataset")
    table.add_column("checkpoint")
    for metric in METRIC_NAMES:
        table.add_column(metric.upper().replace("_LOGISTIC", "-log"), justify="right")
    datasets = [("val", "val"), *[(n, n) for n in names]]
    for label, name in datasets:
        for prefix, rule in rows:
            key_prefix = f"{prefix}/" if name == "val" else f"{prefix}/{name}/"
            if name == "val" and not prefix.startswith("val"):
                continue
            if name != "val" and prefix.startswith("val"):
                continue
            values = [metrics.get(f"{key_prefix}{m}") for m in METRIC_NAMES]
            if all(v is None for v in values):
                continue
            table.add_row(label, rule, *["-" if v is None else f"{v:.4f}" for v in values])
    console = Console(record=True)
    console.print(table)
    from syndr_lightning.logs import log_text

    log_text(console.export_text())  # the table in the run's log file too
