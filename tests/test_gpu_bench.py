"""The GPU benchmark's --cpu-smoke mode runs end to end (through its wrapper) on the CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "experiments/gpu_bench.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["gpu_bench"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_wrapper_runs_the_bench(tmp_path: Path) -> None:
    """The shell wrapper (no carried wheels here) runs the script and copies to $OUT."""
    out = tmp_path / "docs"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "GPU_BENCH_OUT_DIR": str(out),
        "GPU_BENCH_LIMIT_S": "300",
        "OUT": str(tmp_path / "device_out"),
    }
    (tmp_path / "device_out").mkdir()
    args = ["--cpu-smoke", "--skip-throughput", "--sizes", "200", "--backends", "torch"]
    proc = subprocess.run(
        ["bash", str(ROOT / "experiments/gpu_bench.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "gpu_bench_results.json").read_text())
    assert {(r["n"], r["method"]) for r in data["drcdown"]} == {
        (300, "reference (dense float64)"),
        (300, "torch (cpu)"),
        (200, "torch (cpu)"),
    }
    assert (tmp_path / "device_out" / "gpu_bench_results.md").is_file()
    bad = subprocess.run(
        ["bash", str(ROOT / "experiments/gpu_bench.sh"), "--cpu-smoke"],
        env={**env, "GPU_BENCH_LIMIT_S": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "GPU_BENCH_LIMIT_S" in bad.stderr


def test_cpu_smoke_writes_results(tmp_path: Path) -> None:
    """The full --cpu-smoke run: every DRCDown method and the four throughput rows."""
    out = tmp_path / "docs"
    assert _module().main(["--cpu-smoke", "--out-dir", str(out)]) == 0
    data = json.loads((out / "gpu_bench_results.json").read_text())
    rows = data["drcdown"]
    methods = {(r["n"], r["method"]) for r in rows}
    assert (300, "reference (dense float64)") in methods
    for n in (1000, 2000):
        assert (n, "torch (cpu)") in methods and (n, "faiss-cpu (range search)") in methods
    # Every backend found exactly the clusters of the first method at the same N.
    checked = [r for r in rows if "agrees_with" in r]
    assert len(checked) == 3 and all(not r["agrees_with"].startswith("DIFFERS") for r in checked)
    assert all(0 < r["kept"] < r["n"] for r in rows)  # the generated data has clusters to thin
    assert [r["what"] for r in data["throughput"]] == [
        "DRCDown feature pass (loader + model)",
        "DRCDown feature pass (model only)",
        "training step (loader + model)",
        "training step (model only)",
    ]
    assert all(r["images_per_s"] > 0 for r in data["throughput"])
    md = (out / "gpu_bench_results.md").read_text()
    assert "| N | method | total s |" in md and "time / torch (cpu)" in md


def test_budget_skips_and_errors(tmp_path: Path, capsys) -> None:
    gb = _module()
    args = ["--cpu-smoke", "--out-dir", str(tmp_path), "--skip-throughput", "--sizes", "300,600"]
    assert gb.main([*args, "--budget-s", "0", "--backends", "torch"]) == 0
    rows = json.loads((tmp_path / "gpu_bench_results.json").read_text())["drcdown"]
    skipped = [r for r in rows if r.get("skipped")]
    assert skipped and all("estimated" in r["skipped"] for r in skipped)
    assert "skipped:" in (tmp_path / "gpu_bench_results.md").read_text()
    capsys.readouterr()
    assert gb.main(["--cpu-smoke", "--sizes", "many", "--out-dir", str(tmp_path)]) == 2
    assert "--sizes" in capsys.readouterr().err
    assert gb.main(["--cpu-smoke", "--backends", "cuvs", "--out-dir", str(tmp_path)]) == 2
    assert "cuvs" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert gb.main(["--out-dir", str(tmp_path)]) == 2
        assert "no CUDA device" in capsys.readouterr().err
