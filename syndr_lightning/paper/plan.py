"""The campaign: every run of the chosen tables and seeds, one folder each, and its cost.

A run is identified by what it trains: ``(experiment, overrides, seed)``, with overrides
equal to the paper's defaults dropped. Cells of different tables that need the same run
share it (Table 1's SynDR-IQA row is also Table 4 row f and the first row of Tables 5-7;
Table 8's ViT-B/16 SynDR-IQA row is Table 10's first row). Its folder is
``<out>/table<T>/<row>/<target>/seed<S>`` of the first table (in the paper's order, over
all ten, whatever ``--tables`` chose) that needs it, so the layout never depends on the
selection and a rerun finds every finished run. Plain Python, no torch.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syndr_lightning.paper.tables import PAPER_DEFAULTS, TABLES

#: The run record our task wrapper writes beside metrics.json (runner.paper_task).
RUN_FILE = "reproduce_run.json"
METRICS_FILE = "metrics.json"
PAPER_EPOCHS = 24


def _value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when it is missing, unreadable, not JSON or not
    an object (for records a campaign only peeks at; the report's inputs are checked
    strictly by :func:`run_metrics`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def canonical(overrides: Sequence[str]) -> tuple[str, ...]:
    """Sorted overrides without those equal to the paper's defaults (a run's identity)."""
    out = []
    for o in overrides:
        key, _, value = o.partition("=")
        default = PAPER_DEFAULTS.get(key)
        if default is not None and _value(value) == default:
            continue
        out.append(o)
    return tuple(sorted(out))


@dataclass
class Cell:
    """One (table, row, target) a run fills."""

    table: str
    row: str
    target: str


@dataclass
class Run:
    """One training run of the campaign."""

    id: str  # also the Hydra option name of its generated config
    folder: str  # relative to the campaign folder
    experiment: str
    overrides: tuple[str, ...]
    seed: int
    expect: dict[str, Any]
    datasets: tuple[str, ...]
    cells: list[Cell] = field(default_factory=list)
    group: str = ""  # the W&B group: the owning table

    @property
    def key(self) -> tuple[str, tuple[str, ...], int]:
        """What the run trains (two cells with equal keys share the run)."""
        return (self.experiment, canonical(self.overrides), self.seed)

    def command(self) -> str:
        """The equivalent single command line (for the plan)."""
        parts = [f"+experiment={self.experiment}", *self.overrides, f"seed={self.seed}"]
        return " ".join(parts)

    def status(self, root: Path) -> str:
        """``done`` (test metrics the run vouches for), ``refused`` (a metrics file the
        report would refuse: :func:`run_metrics`), ``partial`` (its own checkpoint to
        resume), ``failed`` (a failed or diverged attempt, nothing to resume) or
        ``pending``. The plan, the launcher and the report agree through this."""
        from syndr_lightning.paper.runner import own_checkpoint

        state, _ = run_metrics(root, self)
        if state in ("done", "refused"):
            return state
        if own_checkpoint(root / self.folder) is not None:
            return "partial"
        return "failed" if state == "failed" else "pending"


def run_metrics(root: Path, run: Run) -> tuple[str, dict[str, float] | str]:
    """Whether ``run``'s folder holds numbers the report may use.

    ``("done", metrics)``; ``("refused", one line naming the file and how to rerun)`` for
    a metrics.json that is malformed (not UTF-8, not JSON, not a mapping), carries no
    digest or one that does not match (edited by hand), belongs to another seed or data
    set (no ``test/<set>/*`` of the run's sets), or whose ``reproduce_run.json`` is
    missing or names another run; ``("failed", reason)`` when the run's
    ``run_status.json`` says it diverged or failed; ``("none", "")`` when it left nothing
    yet or was preempted (to resume)."""
    from syndr_lightning.reporting import digest_matches, read_json_file, read_run_status
    from syndr_lightning.utils.errors import InputError

    folder = root / run.folder
    file = folder / METRICS_FILE
    again = f"delete {file} and rerun the same `syndr reproduce` command to train it again"
    try:
        status = read_run_status(folder)
    except InputError as exc:
        return "refused", str(exc)
    ended = status.get("status") if status is not None else None
    if ended in ("diverged", "failed"):  # counted, never averaged; the same command retries
        return "failed", f"{ended}: {status.get('reason') or '?'}"  # type: ignore[union-attr]
    if ended == "preempted" or not file.is_file():  # to resume (a metrics.json is older)
        return "none", ""
    try:
        payload = read_json_file(
            file, "the metrics.json a campaign run writes", fix=again[0].upper() + again[1:]
        )
    except InputError as exc:
        return "refused", str(exc)
    metrics = payload.get("metrics")
    identity = payload.get("identity")
    if not isinstance(metrics, dict) or not isinstance(identity, dict) or "digest" not in payload:
        return "refused", f"{file} carries no metrics with identity and digest; {again}"
    if not digest_matches(payload):
        return "refused", f"{file} does not match its digest (edited by hand?); {again}"
    if identity.get("seed") != run.seed:
        return (
            "refused",
            f"{file} is seed {identity.get('seed')!r}'s, not seed {run.seed}'s; {again}",
        )
    missing = [d for d in run.datasets if not any(str(k).startswith(f"test/{d}/") for k in metrics)]
    if missing:
        return (
            "refused",
            f"{file} holds no test/{missing[0]}/* metrics (another run's file?); {again}",
        )
    record = folder / RUN_FILE
    try:
        rid = json.loads(record.read_text(encoding="utf-8")).get("id")
    except (OSError, ValueError, AttributeError):
        rid = None
    if rid != run.id:
        what = "is missing" if not record.is_file() else f"names another run ({rid!r})"
        return "refused", f"{record} {what}: the folder holds no run of this campaign; {again}"
    values = {str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    return "done", values


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text)


def all_runs(seeds: Sequence[int]) -> list[Run]:
    """Every run of all ten tables for ``seeds``, shared runs once (paper order)."""
    by_key: dict[tuple[str, tuple[str, ...], int], Run] = {}
    for table in TABLES.values():
        for row in table.rows:
            for target, experiment, overrides in row.runs():
                for seed in seeds:
                    folder = f"table{table.id}/{row.id}/{target.name}/seed{seed}"
                    run = Run(
                        id=_safe(folder.replace("/", "__")),
                        folder=folder,
                        experiment=experiment,
                        overrides=overrides,
                        seed=int(seed),
                        expect=row.expect,
                        datasets=target.datasets,
                        group=f"syndr-table{table.id}",
                    )
                    run = by_key.setdefault(run.key, run)
                    run.cells.append(Cell(table.id, row.id, target.name))
    return list(by_key.values())


def campaign(
    tables: Sequence[str], seeds: int, only: Sequence[str] = ()
) -> tuple[list[Run], dict[tuple[str, str, str, int], Run]]:
    """The runs the chosen tables need, and ``(table, row, target, seed) -> run``.

    ``only``: keep the cells whose ``table<T>/<row>/<target>`` matches one of these
    glob patterns (e.g. ``table5/kall/*``)."""
    from fnmatch import fnmatch

    seed_list = list(range(int(seeds)))
    cells: dict[tuple[str, str, str, int], Run] = {}
    chosen: list[Run] = []
    for run in all_runs(seed_list):
        keep = False
        for c in run.cells:
            name = f"table{c.table}/{c.row}/{c.target}"
            if c.table in tables and (not only or any(fnmatch(name, p) for p in only)):
                cells[(c.table, c.row, c.target, run.seed)] = run
                keep = True
        if keep:
            chosen.append(run)
    return chosen, cells


# ----------------------------------------------------------------------------- cost
def _backbone(run: Run) -> str:
    for o in run.overrides:
        if o.startswith("model.backbone="):
            return o.split("=", 1)[1]
    return "resnet50"


def recorded_epoch_seconds(root: Path, runs: Sequence[Run]) -> dict[str, float]:
    """Median seconds per epoch of finished runs, per backbone (and ``*`` over all)."""
    per: dict[str, list[float]] = {}
    for run in runs:
        file = root / run.folder / RUN_FILE
        try:
            rec = json.loads(file.read_text(encoding="utf-8"))
            value = float(rec["seconds_per_epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if math.isfinite(value) and value > 0:
            per.setdefault(_backbone(run), []).append(value)
            per.setdefault("*", []).append(value)
    return {k: statistics.median(v) for k, v in per.items()}


def epochs_of(overrides: Sequence[str]) -> int:
    """``trainer.max_epochs`` among ``overrides`` (the paper's 24 otherwise)."""
    for o in overrides:
        key, _, value = o.lstrip("+").partition("=")
        if key == "trainer.max_epochs":
            try:
                return int(value)
            except ValueError:
                break
    return PAPER_EPOCHS


def gpu_hours(
    run: Run,
    epochs: int,
    epoch_minutes: float | None,
    recorded: dict[str, float],
    rates: dict[str, tuple[float, float]] | None = None,
) -> float | None:
    """Estimated GPU-hours of one run: ``--epoch-minutes``, else the seconds per epoch
    finished runs of its backbone recorded, else the per-backbone estimate of
    :mod:`paper.cost` (``rates``: measured by gpu_bench, else its defaults)."""
    from syndr_lightning.paper.cost import estimated_epoch_seconds, training_images

    if epoch_minutes is not None:
        seconds = float(epoch_minutes) * 60.0
    elif _backbone(run) in recorded:
        seconds = recorded[_backbone(run)]
    else:
        images = training_images(run.experiment, run.overrides, bool(run.expect.get("ddcup")))
        seconds = estimated_epoch_seconds(
            _backbone(run), images, bool(run.expect.get("drcdown")), rates
        )
    if not math.isfinite(seconds):
        return None
    return epochs * seconds / 3600.0


def format_plan(
    root: Path,
    tables: Sequence[str],
    runs: Sequence[Run],
    cells: dict[tuple[str, str, str, int], Run],
    epochs: int,
    epoch_minutes: float | None,
) -> str:
    """The plan as text: every run (table, row, target, seed, command, cost, status) and
    the totals per table and overall."""
    from syndr_lightning.paper.cost import cost_source

    recorded = recorded_epoch_seconds(root, all_runs(sorted({r.seed for r in runs})))
    rates, source = cost_source(root, recorded, epoch_minutes)
    lines = [
        f"campaign folder: {root}",
        f"tables: {', '.join(tables)}; epochs per run: {epochs}; cost from {source}",
        "",
        "table  row                  target     seed  status   GPU-h  run folder / command",
    ]
    totals: dict[str, list[float | None]] = {}
    owned: dict[str, int] = {}
    seen: set[str] = set()
    order = {(t.id, r.id): i for t in TABLES.values() for i, r in enumerate(t.rows)}
    for (table, row, target, seed), run in sorted(
        cells.items(), key=lambda kv: (int(kv[0][0]), order[kv[0][:2]], kv[0][2], kv[0][3])
    ):
        hours = gpu_hours(run, epochs, epoch_minutes, recorded, rates)
        status = run.status(root)
        first = run.id not in seen  # listed the first time: with its command line
        totals.setdefault(table, []).append(hours)
        if first:
            owned[table] = owned.get(table, 0) + 1
        seen.add(run.id)
        cost = "?" if hours is None else f"{hours:.2f}"
        other = run.folder.split("/")[0] != f"table{table}"
        where = f"(shared) {run.folder}" if other or not first else run.folder
        lines.append(
            f"{table:>5}  {row:<20} {target:<10} {seed:>4}  {status:<8} {cost:>5}  {where}"
        )
        if first:
            lines.append(f"{'':>53}{run.command()}")
    lines.append("")
    lines.append("table  cells' runs  new runs  GPU-h (new runs)")
    grand: list[float | None] = []
    done_ids: set[str] = set()
    for table in tables:
        n_new = owned.get(table, 0)
        new_hours = []
        for run in runs:
            if run.id in done_ids:
                continue
            first = next((c.table for c in run.cells if c.table in tables), None)
            if first == table:
                done_ids.add(run.id)
                new_hours.append(gpu_hours(run, epochs, epoch_minutes, recorded, rates))
        grand += new_hours
        text = _sum(new_hours)
        lines.append(f"{table:>5}  {len(totals.get(table, [])):>11}  {n_new:>8}  {text:>16}")
    status = [r.status(root) for r in runs]
    other = "".join(f", {status.count(s)} {s}" for s in ("failed", "refused") if s in status)
    lines.append(
        f"total: {len(runs)} runs ({status.count('done')} done, {status.count('partial')} "
        f"partial, {status.count('pending')} pending{other}), {_sum(grand)} GPU-h"
    )
    return "\n".join(lines) + "\n"


def _sum(hours: Sequence[float | None]) -> str:
    if any(h is None for h in hours):
        return "?"
    return f"{sum(h for h in hours if h is not None):.1f}"
