"""`syndr sweep collect|intra` ship in the package; headline columns by default; a missing
optional dependency is one line, not a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from syndr_lightning import cli
from syndr_lightning.cli import main as syndr_main


def _job(root: Path, i: int, t_f: float, seed: int, srcc: float) -> None:
    job = root / str(i)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"reshape.T_f={t_f}", f"seed={seed}"])
    )
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))
    metrics = {"val/srcc": srcc, "val/plcc": srcc, "val/krcc": 0.1, "val/epoch": 3.0}
    for ds in ("zeta", "alpha"):
        for m in ("srcc", "plcc", "krcc", "plcc_logistic"):
            metrics[f"test/{ds}/{m}"] = srcc
            metrics[f"test_last/{ds}/{m}"] = srcc
    (job / "metrics.json").write_text(json.dumps({"metrics": metrics, "info": {"seed": seed}}))


def test_sweep_collect_headline_by_default_all_on_request(tmp_path: Path, capsys) -> None:
    root = tmp_path / "multirun"
    for i, (t_f, seed) in enumerate([(0.05, 0), (0.05, 1), (0.1, 0), (0.1, 1)]):
        _job(root, i, t_f, seed, 0.5 + i / 10)
    assert syndr_main(["sweep", "collect", str(root)]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if "val/srcc" in line)
    cols = [c.strip() for c in header.strip("|").split("|")]
    metric_cols = [c for c in cols if "/" in c]
    # the test sets in the runs' order (zeta before alpha), SRCC and PLCC only
    assert metric_cols == ["val/srcc", "val/plcc", "test/zeta/srcc", "test/zeta/plcc",
                           "test/alpha/srcc", "test/alpha/plcc"]  # fmt: skip
    assert syndr_main(["sweep", "collect", str(root), "--all", "--name", "all"]) == 0
    text = (root / "all.md").read_text()
    assert "test/alpha/plcc_logistic" in text and "val/krcc" in text


def test_sweep_intra_is_a_subcommand(tmp_path: Path, capsys) -> None:
    assert (
        syndr_main(["sweep", "intra", str(tmp_path / "missing")]) == 1
    )  # a missing folder is a data error (docs/failures.md)
    assert "error:" in capsys.readouterr().err


def test_missing_dependency_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def run(args):
        raise ModuleNotFoundError("No module named 'onnx'", name="onnx")

    import syndr_lightning.sweep.cli as sweep_cli

    monkeypatch.setattr(sweep_cli, "_intra", run)
    assert cli.main(["sweep", "intra", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: syndr sweep needs the Python package 'onnx', which is not installed: "
        "pip install 'syndr-lightning[export]'"
    )
    assert "Traceback" not in err
