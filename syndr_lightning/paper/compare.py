"""Put one multirun's results beside the paper's published numbers (Markdown + CSV).

    python experiments/compare_paper.py logs/syn2auth/multiruns/<date>_<time>
    python experiments/compare_paper.py DIR [--paper FILE] [--out DIR]

(For every table at once, planned, run and reported: ``syndr reproduce``, see
``syndr_lightning.paper``.)

Reads every job of the multirun (``reporting.find_jobs``: ``.hydra/`` files and
``metrics.json``), each job's ``syndr_protocol.json``, and the paper file; prints and
writes ``paper_comparison.md`` / ``.csv`` (atomically, into DIR or ``--out``). One row per
paper number we have runs for: setting, our mean +- sample std over seeds and n (intra:
also the median, the paper's statistic), the paper's number, the difference, and the
protocol differences that remain for that row (read from the runs, not assumed).

Our headline numbers follow the run's selection rule (``last`` under the paper protocol);
runs with ``select_on_test=true`` add rows for the authors' rule (best epoch on the TEST
set), labelled ``best-on-test``. Table 4 rows and the sensitivity sweeps average the three
authentic targets per seed before averaging over seeds, as the paper does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from syndr_lightning.paper.plan import json_object
from syndr_lightning.reporting import JobRecord, find_jobs, write_table_report
from syndr_lightning.utils.errors import InputError, SyndrError, report_error

PAPER_FILE = Path(__file__).resolve().parent / "paper_results.json"
"""The paper's numbers, every table (packaged: wheel users have it too)."""
RULES = {"test": "headline", "test_best_on_test": "best-on-test"}
CROSS = ("syn2auth", "baseline", "syn2alg", "syn2alg_baseline", "syn2syn", "syn2syn_baseline")
AUTHORS_WEIGHTS = "ResNet50_Weights.IMAGENET1K_V1"
#: What the paper / the authors' script use (train_test_IQA_cross.py defaults).
AUTHORS = {"epochs": 24, "batch": 32, "lr": 2e-5, "lr_ratio": 10.0, "crop": 224, "crops": 5}


# ------------------------------------------------------------------------- inputs
def load_paper(path: str | Path = PAPER_FILE) -> pd.DataFrame:
    """The paper's numbers: one row per (table, experiment, setting, dataset, metric)."""
    file = Path(path)
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
        rows = payload["rows"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{file} is not a paper-results file ({exc}); expected JSON with a 'rows' list "
            f"as in syndr_lightning/paper/paper_results.json"
        ) from None
    table = pd.DataFrame(rows)
    need = {"table", "experiment", "setting", "dataset", "metric", "value", "source"}
    if not need <= set(table.columns):
        raise InputError(f"{file}: rows need the keys {sorted(need)}")
    if "context" in table.columns:  # other methods' numbers: no run of ours matches them
        table = table[table["context"].isna() | (table["context"] == False)]  # noqa: E712
    return table[table["metric"].notna()].reset_index(drop=True)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def experiment_of(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """(experiment, setting) of a job, in the paper file's terms."""
    task = str(cfg.get("task_name", ""))
    reshape = cfg.get("reshape") or {}
    plain = not reshape.get("ddcup") and not reshape.get("drcdown")
    sweep = cfg.get("sweep_name")
    if sweep and sweep != "optuna":
        value = reshape.get(str(sweep))
        return f"sweep_{sweep}", f"{sweep}={value}"
    if task in ("syn2auth", "baseline"):
        return task, str(cfg.get("target"))
    if task.startswith("ablation_"):
        return task, str(cfg.get("target"))
    if task == "syn2alg":
        return ("syn2alg_baseline" if plain else "syn2alg"), str(cfg.get("pipal_subset"))
    if task == "syn2syn":
        return ("syn2syn_baseline" if plain else "syn2syn"), "all"
    if task == "intra":
        return ("intra_baseline" if plain else "intra"), "kadid10k"
    return task or "unknown", str(cfg.get("target", ""))


def _metric_values(metrics: Mapping[str, float]) -> list[tuple[str, str, str, float]]:
    out = []
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] in RULES and parts[2] in ("srcc", "plcc"):
            out.append((RULES[parts[0]], parts[1], parts[2], float(value)))
    return out


def job_records(jobs: Sequence[JobRecord]) -> pd.DataFrame:
    """One row per (job, rule, dataset, metric) value, with the job's facts."""
    rows = []
    for job in jobs:
        if not job.ok:
            continue
        cfg = _read_yaml(job.path / ".hydra" / "config.yaml")
        protocol = json_object(job.path / "syndr_protocol.json")
        experiment, setting = experiment_of(cfg)
        seed = job.overrides.get("seed", cfg.get("seed", 0))
        for rule, dataset, metric, value in _metric_values(job.metrics or {}):
            rows.append(
                {
                    "experiment": experiment,
                    "setting": setting,
                    "target": cfg.get("target"),
                    "dataset": dataset,
                    "metric": metric,
                    "rule": rule,
                    "seed": seed,
                    "value": value,
                    "job": str(job.path),
                    "differences": protocol_differences(cfg, protocol, experiment, rule),
                }
            )
    if not rows:
        raise InputError(
            "no job of the multirun wrote test metrics (test/<dataset>/srcc); were the "
            "runs made with test sets and test=true, and did they finish?"
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------- protocol
def protocol_differences(
    cfg: Mapping[str, Any], protocol: Mapping[str, Any], experiment: str, rule: str
) -> list[str]:
    """What still differs between this run and the paper's / authors' protocol."""
    out: list[str] = []
    model = cfg.get("model") or {}
    data = cfg.get("data") or {}
    trainer = cfg.get("trainer") or {}
    reshape = cfg.get("reshape") or {}
    if model.get("backbone") != "resnet50":
        out.append(f"backbone {model.get('backbone')} (paper: ResNet-50)")
    weights = protocol.get("backbone_weights", model.get("weights"))
    if weights != AUTHORS_WEIGHTS:
        out.append(f"backbone weights {weights} (authors: IMAGENET1K_V1)")
    n_refs = protocol.get("n_train_refs")
    cross = experiment in CROSS or experiment.startswith(("ablation_", "sweep_"))
    if cross and n_refs is not None and n_refs != 74:
        out.append(f"{n_refs} training refs (paper: 74)")
    if protocol.get("n_val_refs"):
        out.append(f"{protocol['n_val_refs']} training refs held out for validation")
    if protocol.get("ddcup"):
        if reshape.get("encoder") != "resnet50" or protocol.get("encoder_weights") != (
            AUTHORS_WEIGHTS
        ):
            out.append(
                f"DDCUp encoder {reshape.get('encoder')} / {protocol.get('encoder_weights')} "
                f"(authors: ResNet-50 IMAGENET1K_V1)"
            )
        if cross and protocol.get("n_ddcup_refs") not in (None, 81):
            out.append(f"DDCUp over {protocol.get('n_ddcup_refs')} refs (authors: 81)")
        pool = protocol.get("candidate_pool") or {}
        if pool.get("rule") != "predistorted":
            size = pool.get("size")
            out.append(
                f"candidates: {size} drawn (seed {pool.get('seed')}) from {pool.get('source_size')}"
                f" and distorted by our GenDist (authors: their 81 kadid_add81 images)"
            )
    scaling = str(protocol.get("label_scaling", data.get("label_scaling", "")))
    if not scaling.startswith("authors"):
        out.append("labels scaled over the whole label file (authors: 81 refs x the types)")
    if data.get("hflip", False):
        out.append("horizontal flips in training (authors: none)")
    tests = [str(t.get("name")) for t in (data.get("test") or []) if isinstance(t, Mapping)]
    resized = protocol.get("test_resize") or {}
    if "bid" in tests and not resized.get("bid"):
        out.append("BID not resized (authors: BID_512)")
    epochs = trainer.get("max_epochs")
    if epochs != AUTHORS["epochs"]:
        out.append(f"{epochs} epochs (paper: 24)")
    limit = trainer.get("limit_train_batches")
    if limit not in (None, 1.0):
        out.append(f"{limit} training batches per epoch")
    for key, name, want in (
        ("batch_size", "batch", AUTHORS["batch"]),
        ("crop_size", "crop", AUTHORS["crop"]),
        ("eval_crops", "test crops", AUTHORS["crops"]),
    ):
        if data.get(key) is not None and data.get(key) != want:
            out.append(f"{name} {data.get(key)} (paper: {want})")
    if model.get("lr") is not None and not math.isclose(float(model["lr"]), AUTHORS["lr"]):
        out.append(f"lr {model['lr']} (paper: 2e-5)")
    if model.get("lr_ratio") is not None and float(model["lr_ratio"]) != AUTHORS["lr_ratio"]:
        out.append(f"head lr ratio {model['lr_ratio']} (paper: 10)")
    if model.get("freeze_bn"):
        out.append("backbone batch-norm statistics frozen (paper: trained)")
    if model.get("lr_schedule") not in (None, "none"):
        out.append(f"{model['lr_schedule']} learning-rate schedule (paper: constant)")
    if model.get("head_bias") not in (None, "zero"):
        out.append(f"head bias started at {model['head_bias']} (paper: 0)")
    if rule == "headline":
        chosen = str(protocol.get("selection", "")).split(" ")[0] or "?"
        out.append(f"selection: {chosen} (authors: best epoch on the test set)")
    if protocol.get("drcdown"):
        out.append("authors' DRCDown position defect not reproduced (their I75-I81 never train)")
    return out


# ------------------------------------------------------------------------- compare
def _targets(setting: str) -> list[str]:
    return [t for t in str(setting).split(",") if t]


def _ours(values: pd.DataFrame, paper_row: pd.Series, rule: str) -> pd.DataFrame:
    """Per-seed values of our runs for one paper row and rule (averaged over targets)."""
    sel = values[
        (values["experiment"] == paper_row["experiment"])
        & (values["metric"] == paper_row["metric"])
        & (values["rule"] == rule)
    ]
    if paper_row["dataset"] == "mean":
        targets = ["livec", "koniq10k", "bid"]
        if not str(paper_row["experiment"]).startswith("sweep_"):
            targets = _targets(paper_row["setting"]) or targets
        else:
            sel = sel[sel["setting"] == paper_row["setting"]]
        sel = sel[(sel["dataset"] == sel["target"]) & sel["dataset"].isin(targets)]
        groups = []
        for seed, part in sel.groupby("seed"):
            if set(part["dataset"]) >= set(targets):
                per = part.groupby("dataset")["value"].mean()
                groups.append(
                    {
                        "seed": seed,
                        "value": float(per[targets].mean()),
                        "differences": sorted({d for ds in part["differences"] for d in ds}),
                    }
                )
        return pd.DataFrame(groups)
    sel = sel[
        (sel["setting"] == str(paper_row["setting"])) & (sel["dataset"] == paper_row["dataset"])
    ]
    return sel[["seed", "value", "differences"]]


def compare(values: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """One row per (paper row, rule) that has runs: ours, paper, difference, differences."""
    rows = []
    for _, prow in paper.iterrows():
        for rule in ("headline", "best-on-test"):
            ours = _ours(values, prow, rule)
            if not len(ours):
                continue
            vals = ours["value"].to_numpy(dtype=np.float64)
            mean = float(vals.mean())
            std = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            paper_value = prow["value"]
            has_paper = paper_value is not None and not pd.isna(paper_value)
            diffs = sorted({d for ds in ours["differences"] for d in ds})
            rows.append(
                {
                    "table": prow["table"],
                    "experiment": prow["experiment"],
                    "setting": prow["setting"],
                    "dataset": prow["dataset"],
                    "metric": prow["metric"],
                    "rule": rule,
                    "ours_mean": mean,
                    "ours_std": std,
                    "ours_median": float(np.median(vals)),
                    "n": len(vals),
                    "paper": float(paper_value) if has_paper else math.nan,
                    "difference": mean - float(paper_value) if has_paper else math.nan,
                    "paper_note": prow.get("note", ""),
                    "protocol_differences": "; ".join(diffs),
                }
            )
    if not rows:
        found = sorted(
            {f"{e}/{s}" for e, s in zip(values["experiment"], values["setting"], strict=True)}
        )
        raise InputError(
            f"none of the runs matches a row of the paper file (runs: {found}); compare runs "
            f"of the paper experiments (+experiment=syn2auth, baseline, ablation/<row>, "
            f"syn2syn, intra, syn2alg, +hparams_search=<T>)"
        )
    return pd.DataFrame(rows)


def _num(value: float, digits: int = 4) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else f"{value:.{digits}f}"


def markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """The comparison as a Markdown table (intra rows also show the median)."""
    head = (
        "| table | setting | dataset | metric | rule | ours (mean ± std) | n | paper | "
        "difference | protocol differences that remain |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        ours = _num(r.ours_mean, digits)
        if not math.isnan(r.ours_std):
            ours += f" ± {_num(r.ours_std, digits)}"
        if str(r.experiment).startswith("intra"):
            ours += f" (median {_num(r.ours_median, digits)})"
        diff = "-" if math.isnan(r.difference) else f"{r.difference:+.{digits}f}"
        paper = _num(r.paper, digits) if not math.isnan(r.paper) else "n/a"
        lines.append(
            f"| {r.table} | {r.experiment} {r.setting} | {r.dataset} | {r.metric} | {r.rule} | "
            f"{ours} | {r.n} | {paper} | {diff} | {r.protocol_differences or 'none'} |"
        )
    return (
        "\n".join(lines)
        + "\n\nours: mean ± sample std over seeds (n = seeds); paper: as published (n/a: "
        "not in our sources, see the paper file's note); difference = ours - paper.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Compare a multirun with the paper; print and write the table; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("multirun_dir", help="the folder Hydra printed for the -m run")
    parser.add_argument("--paper", default=str(PAPER_FILE), help="the paper-results file")
    parser.add_argument("--out", default=None, help="output folder (default: multirun_dir)")
    parser.add_argument("--digits", type=int, default=4, help="decimals in the Markdown")
    args = parser.parse_args(argv)
    try:
        paper = load_paper(args.paper)
        jobs = find_jobs(args.multirun_dir)
        table = compare(job_records(jobs), paper)
        text = markdown(table, args.digits)
        out = Path(args.out or args.multirun_dir)
        write_table_report(out, "paper_comparison", text, table)
    except SyndrError as exc:  # 1 for data errors, 2 for usage (utils.errors.EXIT_CODES)
        return report_error(exc)
    print(text, end="")
    for j in jobs:  # diverged and failed jobs: counted here, never in a number
        if not j.ok:
            why = f" ({j.reason})" if j.reason else ""
            print(f"warning: {j.path}: {j.status}{why}; not counted", file=sys.stderr)
    print(
        f"wrote {out / 'paper_comparison.md'} and {out / 'paper_comparison.csv'}", file=sys.stderr
    )
    return 0
