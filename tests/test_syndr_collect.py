"""experiments/collect_intra.py: medians over seeds from a (generated) multirun folder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "collect_intra.py"


def load_script():
    spec = importlib.util.spec_from_file_location("collect_intra", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def write_job(
    root: Path, i: int, seed: int, metrics: dict | None, selection: str | None = None
) -> None:
    job = root / str(i)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={seed}"]))
    cfg = {"seed": seed, "data": {"test_fraction": 0.2, "val_fraction": 0.1, "eval_crops": 5},
           "reshape": {"ddcup": True, "drcdown": True, "rule": "reference"}}  # fmt: skip
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    if metrics is not None:
        info = {"git_sha": "abc123", "seed": seed}
        if selection is not None:
            info["selection"] = selection
        payload = {"metrics": metrics, "info": info}
        (job / "metrics.json").write_text(json.dumps(payload))


def test_medians_over_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    srcc = [0.80, 0.90, 0.70, 0.85, 0.60]
    for i, s in enumerate(srcc):
        write_job(
            tmp_path,
            i,
            seed=i,
            metrics={
                "test/kadid10k_heldout/srcc": s,
                "test/kadid10k_heldout/plcc": s + 0.01,
                "test_last/kadid10k_heldout/srcc": s - 0.1,
                "test_last/kadid10k_heldout/plcc": s - 0.05,
                "val/srcc": 0.5,
            },
        )
    write_job(tmp_path, 9, seed=9, metrics=None)  # a crashed job
    mod = load_script()
    assert mod.main([str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "9: failed (no metrics.json); not counted" in out.err
    import pandas as pd

    df = pd.read_csv(tmp_path / "intra_results.csv")
    best = df[df["checkpoint"] == "best val/srcc"].iloc[0]
    assert best["srcc_median"] == pytest.approx(0.80)
    assert best["plcc_median"] == pytest.approx(0.81)
    assert best["n_seeds"] == 5 and best["seeds"] == "0 1 2 3 4"
    last = df[df["checkpoint"] == "last epoch"].iloc[0]
    assert last["srcc_median"] == pytest.approx(0.70)
    assert "median over 5 seeds" in (tmp_path / "intra_results.md").read_text()


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    mod = load_script()
    assert (
        mod.main([str(tmp_path / "missing")]) == 1
    )  # data errors: a missing folder, no test metrics
    assert capsys.readouterr().err.startswith("error: multirun directory")
    write_job(tmp_path / "sweep", 0, seed=0, metrics={"val/srcc": 0.5})
    assert mod.main([str(tmp_path / "sweep")]) == 1
    assert "no test/<dataset>/srcc" in capsys.readouterr().err


def test_paper_protocol_runs_are_labelled_last_epoch(tmp_path: Path) -> None:
    for i, s in enumerate([0.8, 0.9, 0.7]):
        metrics = {"test/kadid10k_heldout/srcc": s, "test/kadid10k_heldout/plcc": s}
        write_job(tmp_path, i, seed=i, metrics=metrics, selection="last")
    from syndr_lightning.reporting import find_jobs

    df = load_script().table(find_jobs(tmp_path))
    assert list(df["checkpoint"]) == ["last epoch"] and df["srcc_median"][0] == pytest.approx(0.8)
