"""Unit tests of the sweep collector on hand-made Hydra multirun folders."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest
import yaml

from syndr_lightning.reporting import (
    collect,
    find_jobs,
    parse_overrides,
    save_job_metrics,
    varying_keys,
)
from syndr_lightning.utils.errors import ConfigError, InputError
from syndr_lightning.utils.launch import objective

ROOT = Path(__file__).resolve().parents[1]


def _job(root: Path, idx: int, overrides: list[str], metrics: dict[str, float] | None) -> Path:
    job = root / str(idx)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text("seed: 0\n")
    if metrics is not None:
        save_job_metrics(metrics, job, extra={"status": "ok"})
    return job


def _sweep(tmp_path: Path) -> Path:
    """A T_f sweep: 3 values x 2 seeds, one job crashed (no metrics)."""
    root = tmp_path / "multirun"
    srcc = {(0.05, 0): 0.70, (0.05, 1): 0.72, (0.1, 0): 0.75, (0.1, 1): 0.77, (0.15, 0): 0.60}
    idx = 0
    for t_f in (0.05, 0.1, 0.15):
        for seed in (0, 1):
            base = ["+experiment=syn2auth", "+hparams_search=T_f"]
            value = srcc.get((t_f, seed))
            metrics = None if value is None else {"val/srcc": value, "val/plcc": value - 0.01}
            metrics = metrics if metrics is None else {**metrics, "train/loss": 1.0}
            _job(root, idx, [*base, f"reshape.T_f={t_f}", f"seed={seed}"], metrics)
            idx += 1
    (root / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"sweeper": {"params": {"reshape.T_f": "0.05,0.1,0.15"}}}})
    )
    return root


def test_parse_overrides_types() -> None:
    got = parse_overrides(["+experiment=syn2auth", "reshape.k=all", "reshape.T_q=1.5", "seed=2"])
    assert got == {"experiment": "syn2auth", "reshape.k": "all", "reshape.T_q": 1.5, "seed": 2}


def test_collect_means_spread_and_failures(tmp_path: Path) -> None:
    root = _sweep(tmp_path)
    jobs = find_jobs(root)
    assert len(jobs) == 6 and sum(not j.ok for j in jobs) == 1
    assert varying_keys(jobs) == ["reshape.T_f"]
    summary = collect(root)
    table = summary.table.set_index("reshape.T_f")
    assert list(table.index) == [0.05, 0.1, 0.15]
    assert table.loc[0.1, "val/srcc/mean"] == pytest.approx(0.76)
    assert table.loc[0.1, "val/srcc/std"] == pytest.approx(math.sqrt(2 * 0.01**2))
    assert table.loc[0.15, "n"] == 1 and table.loc[0.15, "failed"] == 1
    assert math.isnan(table.loc[0.15, "val/srcc/std"])
    assert summary.metrics == ["val/srcc", "val/plcc"]  # train/* left out by default
    md = summary.markdown_path.read_text()
    assert "**0.7600 ± 0.0141**" in md  # best row in bold
    assert "| 0.15 | 0.6000 |" in md
    rows = list(csv.DictReader(summary.csv_path.open()))
    assert [r["reshape.T_f"] for r in rows] == ["0.05", "0.1", "0.15"]
    assert rows[0]["seeds"] == "0 1"


def test_collect_cli_writes_and_reports_errors(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        "collect_sweep", ROOT / "experiments/collect_sweep.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    root = _sweep(tmp_path)
    out = tmp_path / "tables"
    assert module.main([str(root), "--out", str(out), "--metrics", "val/srcc"]) == 0
    assert (out / "sweep_table.md").is_file() and (out / "sweep_table.csv").is_file()
    assert "val/plcc" not in (out / "sweep_table.md").read_text()
    assert module.main([str(tmp_path / "missing")]) == 1  # data error: the folder is missing
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert (
        module.main([str(root), "--metrics", "val/nope"]) == 2
    )  # usage error: a metric no job has
    assert "val/nope" in capsys.readouterr().err.splitlines()[0]


def test_collect_rejects_broken_metrics_file(tmp_path: Path) -> None:
    root = _sweep(tmp_path)
    (root / "0" / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        collect(root)
    with pytest.raises(InputError, match="no job folders"):
        collect(tmp_path / "multirun" / "0" / ".hydra")


def test_objective() -> None:
    assert objective({"val/srcc": 0.5}, "val/srcc") == 0.5
    assert objective({"val/srcc": 0.5}, None) is None
    with pytest.raises(ConfigError, match="val/plcc"):
        objective({"val/srcc": 0.5}, "val/plcc")
    with pytest.raises(InputError, match="finite"):
        objective({"val/srcc": float("nan")}, "val/srcc")


def test_save_job_metrics_roundtrip(tmp_path: Path) -> None:
    import torch

    path = save_job_metrics({"val/srcc": torch.tensor(0.25), "note": "x"}, tmp_path)
    assert json.loads(path.read_text())["metrics"] == {"val/srcc": 0.25}


def test_check_sweep_devices_rule() -> None:
    from syndr_lightning.utils.launch import check_sweep_devices

    ddp = {"devices": 4, "accelerator": "gpu", "strategy": "ddp"}
    check_sweep_devices(ddp, "RUN")  # single runs may use DDP
    check_sweep_devices({"devices": 1, "accelerator": "cpu"}, "RunMode.MULTIRUN")
    check_sweep_devices({"devices": "auto", "accelerator": "cpu"}, "MULTIRUN")
    with pytest.raises(ConfigError, match="one device per job"):
        check_sweep_devices(ddp, "RunMode.MULTIRUN", "hydra._internal.core_plugins.BasicLauncher")
    with pytest.raises(ConfigError, match="one device per job"):
        check_sweep_devices({"devices": [0, 1]}, "MULTIRUN")
    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    check_sweep_devices(ddp, "MULTIRUN", slurm, tasks_per_node=4)
    with pytest.raises(ConfigError, match="tasks_per_node"):
        check_sweep_devices(ddp, "MULTIRUN", slurm, tasks_per_node=1)
