"""Every chosen table laid out as in the paper: ours (mean +- std over seeds, n), the
paper's number, the difference, marked where it exceeds two standard errors.

Each cell reads the ``metrics.json`` of its planned runs (``test/<dataset>/<metric>``, the
run's headline rule). A run is checked against what its row is before its number is used:

* **refused** (the cell says why, no number): the folder holds no run of this campaign
  (no ``reproduce_run.json`` naming it), or the run's recorded method differs from the
  row's (``syndr_protocol.json``: DDCUp / DRCDown on or off, the thresholds ``k``,
  ``T_ref``, ``T_q``, ``T_f``, ``T_u``, the candidate selection, the training types), or
  the seeds of one cell ran under different protocols;
* **labelled** (number shown with a footnote): every remaining difference from the
  paper's protocol (backbone or encoder other than the table's, weights, epochs, crops,
  selection rule, ...; ``compare.protocol_differences``).

Written with ``reporting.write_table_report`` (atomic ``<name>.md`` + ``<name>.csv``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from syndr_lightning.paper.plan import METRICS_FILE, Run, json_object, run_metrics
from syndr_lightning.paper.tables import PAPER_FILE, PAPER_WEIGHTS, TABLES, Table, paper_numbers
from syndr_lightning.utils.io import finite_json

REPORT_NAME = "paper_report"
_THRESHOLDS = ("k", "T_ref", "T_q", "T_f", "T_u")


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class RunResult:
    """What one run left: metrics, or why its numbers cannot be used, and its differences."""

    run: Run
    metrics: dict[str, float] | None = None
    refused: str = ""
    differences: tuple[str, ...] = ()
    failed: str = ""  # the run diverged or failed (run_status.json): counted, never averaged


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def _expected_types(run: Run, cfg: dict[str, Any]) -> tuple[int, ...] | None:
    from syndr_lightning.data.splits import resolve_types

    options = ((cfg.get("data") or {}).get("train") or {}).get("options") or {}
    types = options.get("types")
    target = run.cells[0].target if run.cells else None
    want = {"synthetic": "all", "kadid10k": "all"}.get(str(target), target)
    if types is None or want is None:
        return None
    return tuple(resolve_types(want))


def check_run(root: Path, run: Run) -> RunResult:
    """Read one run's folder and decide: usable (with its differences) or refused."""
    from syndr_lightning.models.backbones import weights_name
    from syndr_lightning.paper.compare import protocol_differences

    folder = root / run.folder
    state, found = run_metrics(root, run)
    if state == "refused":
        return RunResult(run, refused=str(found))
    if state != "done" or not isinstance(found, dict):
        return RunResult(run, failed=str(found) if state == "failed" else "")
    metrics = found
    cfg = _yaml(folder / "config_resolved.yaml")
    protocol = json_object(folder / "syndr_protocol.json")
    if not protocol:
        return RunResult(run, refused=f"{run.folder}: no syndr_protocol.json (protocol unknown)")
    want = run.expect
    wrong = []
    for key in ("ddcup", "drcdown", *_THRESHOLDS):
        if key not in want:
            continue
        got = protocol.get(key)
        if got is None or not _same(got, want[key]):
            wrong.append(f"{key}={got} (row: {want[key]})")
    if "select_candidates" in want:
        got = (cfg.get("reshape") or {}).get("select_candidates")
        if got != want["select_candidates"]:
            wrong.append(f"select_candidates={got} (row: {want['select_candidates']})")
    types = _expected_types(run, cfg)
    if types is not None and tuple(protocol.get("train_types") or ()) != types:
        wrong.append(f"training types {protocol.get('train_types')} (row: {list(types)})")
    if wrong:
        return RunResult(run, refused="another method than the row's: " + ", ".join(wrong))
    written = json_object(folder / METRICS_FILE).get("identity") or {}
    if finite_json(written.get("protocol")) != finite_json(protocol):
        return RunResult(
            run,
            refused=f"{folder / 'syndr_protocol.json'} differs from the protocol its "
            f"metrics.json was written with; delete {folder / METRICS_FILE} and rerun the "
            "same `syndr reproduce` command to train it again",
        )
    experiment = "intra" if run.experiment == "intra" else "syn2auth"
    diffs = [
        d
        for d in protocol_differences(cfg, protocol, experiment, "headline")
        if not d.startswith(("backbone ", "DDCUp encoder"))
    ]
    backbone = protocol.get("backbone") or (cfg.get("model") or {}).get("backbone")
    if backbone != want.get("backbone"):
        diffs.append(f"backbone {backbone} (table: {want.get('backbone')})")
    else:
        paper = weights_name(str(backbone), PAPER_WEIGHTS.get(str(backbone), "none"))
        if protocol.get("backbone_weights") != paper:
            diffs.append(f"backbone weights {protocol.get('backbone_weights')} (paper: {paper})")
    if want.get("ddcup"):
        encoder = protocol.get("encoder")
        if encoder != want.get("encoder"):
            diffs.append(f"DDCUp encoder {encoder} (table: {want.get('encoder')})")
        else:
            paper = weights_name(str(encoder), PAPER_WEIGHTS.get(str(encoder), "none"))
            if protocol.get("encoder_weights") != paper:
                diffs.append(f"encoder weights {protocol.get('encoder_weights')} (paper: {paper})")
    return RunResult(run, metrics, "", tuple(diffs))


@dataclass
class CellValue:
    """One cell: per-seed values (or why there are none), the differences, the runs."""

    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    differences: tuple[str, ...] = ()
    runs: list[str] = field(default_factory=list)
    planned: int = 0
    failed: list[str] = field(default_factory=list)  # runs that diverged or failed


def _values(
    results: dict[str, RunResult],
    spec: Sequence[tuple[int, Sequence[tuple[Run, str]]]],
    metric: str,
) -> CellValue:
    """A cell's per-seed values; ``spec``: per seed, the (run, dataset) pairs averaged."""
    out = CellValue()
    protocols: dict[tuple[str, ...], list[str]] = {}
    for seed, parts in spec:
        out.planned += 1
        vals: list[float] = []
        diffs: set[str] = set()
        ok = True
        for run, dataset in parts:
            res = results[run.id]
            if run.folder not in out.runs:
                out.runs.append(run.folder)
            if res.refused and res.refused not in out.refused:
                out.refused.append(res.refused)
            if res.failed and f"{run.folder}: {res.failed}" not in out.failed:
                out.failed.append(f"{run.folder}: {res.failed}")
            key = f"test/{dataset}/{metric}"
            value = (res.metrics or {}).get(key, math.nan)
            if res.metrics is not None and not math.isfinite(value):
                why = f"{run.folder}: {key} is not a finite number (null in its metrics.json)"
                if why not in out.failed:  # e.g. constant predictions: counted, not averaged
                    out.failed.append(why)
            if res.refused or not math.isfinite(value):
                ok = False
                continue
            vals.append(float(value))
            diffs |= set(res.differences)
        if ok and vals:
            out.values.append(sum(vals) / len(vals))
            out.seeds.append(seed)
            protocols.setdefault(tuple(sorted(diffs)), []).append(f"seed {seed}")
    if len(protocols) > 1:
        out.refused.append(
            "seeds ran under different protocols: "
            + " | ".join(f"{', '.join(s)}: {'; '.join(d) or 'paper'}" for d, s in protocols.items())
        )
    elif protocols:
        out.differences = next(iter(protocols))
    return out


def _fmt(v: float, digits: int = 4) -> str:
    return "-" if not math.isfinite(v) else f"{v:.{digits}f}"


def build_report(
    root: Path,
    tables: Sequence[str],
    cells: dict[tuple[str, str, str, int], Run],
    seeds: int,
    paper_file: str | Path = PAPER_FILE,
) -> tuple[str, pd.DataFrame]:
    """The Markdown text and the CSV table of the report."""
    runs = {r.id: r for r in cells.values()}
    results = {rid: check_run(root, run) for rid, run in runs.items()}
    paper = paper_numbers(paper_file)
    lines = [
        "# SynDR-IQA: our runs beside the paper's tables",
        "",
        f"Campaign folder: `{root}`; seeds 0..{seeds - 1}. Each cell: ours = mean ± sample "
        "std over seeds (n = seeds with a result), the paper's number, Δ = ours − paper; "
        "**⚑** marks |Δ| > 2 standard errors (std/√n; n ≥ 2). [k] = the protocol "
        "differences listed under the table (the run ran, but not exactly as the paper). "
        "`refused` = the folder's run is not what the row is, or its metrics.json is not one "
        "the run vouches for (never averaged in); `failed` = runs that diverged or failed "
        "(counted, never averaged in).",
        "",
    ]
    rows_out: list[dict[str, Any]] = []
    for tid in tables:
        table = TABLES[tid]
        lines += _table_section(table, cells, results, paper, seeds, rows_out)
    from syndr_lightning.paper.tables import _paper_payload

    notes = _paper_payload(str(paper_file)).get("assumptions") or []
    if notes:
        lines += ["## Assumptions in reading the paper", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines), pd.DataFrame(rows_out)


def _table_section(
    table: Table,
    cells: dict[tuple[str, str, str, int], Run],
    results: dict[str, RunResult],
    paper: dict[tuple[str, str, str, str], dict[str, Any]],
    seeds: int,
    rows_out: list[dict[str, Any]],
) -> list[str]:
    columns = [*table.columns, *(["mean"] if table.mean_of else [])]
    lines = [f"## Table {table.id}: {table.title}", ""]
    if table.note:
        lines += [f"({table.note})", ""]
    lines.append("| row | metric | " + " | ".join(columns) + " |")
    lines.append("|---|---|" + "---|" * len(columns))
    footnotes: list[tuple[str, ...]] = []

    def parts_of(row_id: str, dataset: str) -> list[tuple[int, list[tuple[Run, str]]]]:
        row = table.row(row_id)
        out = []
        for seed in range(seeds):
            parts = []
            for target in row.targets:
                want = table.mean_of if dataset == "mean" else (dataset,)
                for ds in target.datasets:
                    if ds in want:
                        run = cells.get((table.id, row_id, target.name, seed))
                        if run is not None:
                            parts.append((run, ds))
            want_n = len(table.mean_of) if dataset == "mean" else 1
            if len(parts) == want_n:  # the average needs every column of that seed
                out.append((seed, parts))
        return out

    row_ids = [r.id for r in table.rows] + list(table.average_rows)
    labels = {r.id: r.label for r in table.rows}
    names = {"dgqa": "DGQA", "syndr": "SynDR-IQA"}
    labels.update({k: f"average, {names.get(k.split('-')[-1], k)}" for k in table.average_rows})
    context = list(
        dict.fromkeys(k[1] for k, v in paper.items() if k[0] == table.id and v.get("context"))
    )
    for row_id in row_ids:
        for metric in table.metrics:
            texts = []
            for dataset in columns:
                if row_id in table.average_rows:
                    members = table.average_rows[row_id]
                    per_seed: dict[int, list[tuple[Run, str]]] = {}
                    for member in members:
                        for seed, parts in parts_of(member, dataset):
                            per_seed.setdefault(seed, []).extend(parts)
                    per_member = len(table.mean_of) if dataset == "mean" else 1
                    spec = [
                        (s, p)
                        for s, p in sorted(per_seed.items())
                        if len(p) == len(members) * per_member
                    ]
                else:
                    spec = parts_of(row_id, dataset)
                cell = _values(results, spec, metric) if spec else CellValue()
                texts.append(
                    _cell_text(
                        table, row_id, labels, dataset, metric, cell, paper, footnotes, rows_out
                    )
                )
            lines.append(f"| {labels[row_id]} | {metric.upper()} | " + " | ".join(texts) + " |")
    for row_id in context:
        for metric in table.metrics:
            texts = []
            for dataset in columns:
                p = paper.get((table.id, row_id, dataset, metric))
                texts.append("paper " + _fmt(float(p["value"]), 3) if p else "-")
            label = next(
                v["label"] for k, v in paper.items() if k[0] == table.id and k[1] == row_id
            )
            lines.append(
                f"| {label} (other method) | {metric.upper()} | " + " | ".join(texts) + " |"
            )
    lines.append("")
    for i, diffs in enumerate(footnotes, start=1):
        lines.append(f"[{i}] {'; '.join(diffs)}  ")
    lines.append("")
    return lines


def _cell_text(
    table: Table,
    row_id: str,
    labels: dict[str, str],
    dataset: str,
    metric: str,
    cell: CellValue,
    paper: dict[tuple[str, str, str, str], dict[str, Any]],
    footnotes: list[tuple[str, ...]],
    rows_out: list[dict[str, Any]],
) -> str:
    p = paper.get((table.id, row_id, dataset, metric))
    paper_value = float(p["value"]) if p and p.get("value") is not None else math.nan
    n = len(cell.values)
    mean = sum(cell.values) / n if n else math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in cell.values) / (n - 1)) if n > 1 else math.nan
    se = std / math.sqrt(n) if n > 1 else math.nan
    diff = mean - paper_value if n and math.isfinite(paper_value) else math.nan
    beyond = bool(math.isfinite(diff) and math.isfinite(se) and abs(diff) > 2 * se)
    if cell.refused:
        status = "refused: " + " / ".join(cell.refused)
        text = f"refused ({'; '.join(cell.refused)})"
    elif not cell.planned:
        status = "not planned"
        text = "not planned"
    elif not n and cell.failed:
        status = "failed: " + " / ".join(cell.failed)
        text = f"failed ({len(cell.failed)}/{cell.planned}: {'; '.join(cell.failed)})"
    elif not n:
        status = "no runs yet"
        text = f"no runs yet (0/{cell.planned})"
    else:
        status = "ok" if not cell.differences else "protocol differs"
        text = _fmt(mean) + (f" ± {_fmt(std)}" if math.isfinite(std) else "") + f" (n={n})"
        if cell.failed:  # counted, never averaged in
            status += f"; {len(cell.failed)} failed: " + " / ".join(cell.failed)
            text += f" ({len(cell.failed)} failed)"
        if cell.differences:
            if cell.differences not in footnotes:
                footnotes.append(cell.differences)
            text += f" [{footnotes.index(cell.differences) + 1}]"
    if math.isfinite(paper_value):
        text += f"<br>paper {_fmt(paper_value, 4 if table.id in ('2', '3', '4') else 3)}"
        if math.isfinite(diff):
            text += f", Δ {diff:+.4f}" + (" **⚑**" if beyond else "")
    rows_out.append(
        {
            "table": table.id,
            "row": row_id,
            "label": labels[row_id],
            "dataset": dataset,
            "metric": metric,
            "ours_mean": mean,
            "ours_std": std,
            "n": n,
            "seeds": " ".join(str(s) for s in cell.seeds),
            "paper": paper_value,
            "difference": diff,
            "standard_error": se,
            "beyond_2se": beyond,
            "status": status,
            "protocol_differences": "; ".join(cell.differences),
            "runs": " ".join(cell.runs),
        }
    )
    return text


def write_report(
    root: Path,
    tables: Sequence[str],
    cells: dict[tuple[str, str, str, int], Run],
    seeds: int,
    out_dir: Path | None = None,
) -> tuple[Path, Path, str]:
    """Build and write ``paper_report.md`` / ``.csv`` (atomically); return paths and text."""
    from syndr_lightning.paper.released import released_section
    from syndr_lightning.reporting import write_table_report

    text, table = build_report(root, tables, cells, seeds)
    text += released_section(root, tables)  # the authors' models, when --released ran
    md, csv = write_table_report(out_dir or root, REPORT_NAME, text, table)
    return md, csv, text
