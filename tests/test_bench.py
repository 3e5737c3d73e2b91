"""Every benchmark script of experiments/bench imports and runs its smallest case.

``make bench`` (``run_all.py --quick``) takes minutes, so each script's smallest case is run
here instead; results are checked where the script checks them, timings never.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from syndr_lightning.config import REPO_ROOT

BENCH = REPO_ROOT / "experiments" / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main(module: ModuleType, monkeypatch: pytest.MonkeyPatch, *args: str) -> int | None:
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *args])
    return module.main()


def bench_loader(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(_load("bench_loader"), monkeypatch, "--quick", "--n", "2") == 0
    assert "ImageCache.get" in capsys.readouterr().out


def bench_featurepass(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _main(_load("bench_featurepass"), monkeypatch, "--quick", "--n", "4")
    assert "feature pass, ours (warm)" in capsys.readouterr().out


def bench_inference(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # exit 0: every batched path scored like the per-image, per-crop reference
    module = _load("bench_inference")
    # the smallest model (the script's own fallback when the offline weights are missing)
    monkeypatch.setattr(
        module, "_model", lambda: (module.BIQAModule(backbone="tiny_cnn", weights="none"), "tiny")
    )
    assert _main(module, monkeypatch, "--quick", "--n", "2") == 0
    assert "ours: batch 16, 2 workers" in capsys.readouterr().out


def bench_distort(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = _load("bench_distort")
    monkeypatch.setattr(module, "H", 48)  # the per-type table on one small image
    monkeypatch.setattr(module, "W", 64)
    monkeypatch.setattr(module, "LEVELS", (3,))
    module.per_type_costs(module.reference_images(1), reps=1)
    assert len(capsys.readouterr().out.splitlines()) == 2 + 25  # title, header, 25 types


def bench_reshape(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = _load("bench_reshape")
    ours = module.worker(300, "ours-torch")
    base = module.worker(300, "baseline")
    assert ours["digest"] == base["digest"] and ours["kept"] == base["kept"]
    module.bench_ddcup(n_cands=(200,))
    assert capsys.readouterr().out.rstrip().endswith("yes")  # same selection and labels


def bench_scaling(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = _load("bench_scaling")
    x, y = module.geometric_clusters(400, 32, 0, torch.device("cpu"))
    plan = module.prepare(x, y)
    _, i, j = module._search(plan, 0, plan.n, 1)
    for slices in (module.balanced_slices(y, 3, module.T_Q), module._naive_slices(400, 3)):
        _, pairs = module._timed_slices(plan, slices, 1)
        assert pairs == set(zip(i.tolist(), j.tolist(), strict=True))
    assert len(module.ref_uniform_pairs(x, y)) == len(i) > 0
    assert np.all(i < j)


def bench_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = _load("bench_cli")
    cmd = [sys.executable, "-m", "syndr_lightning.cli", "--version"]
    seconds = module.best_time(cmd, 1, dict(os.environ))
    assert 0 < seconds < 120


def bench_cache_check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    module = _load("bench_cache_check")
    args = ("--n", "6", "--size", "16", "--image", "12", "16", "--repeat", "1")
    assert _main(module, monkeypatch, *args) == 0
    assert "ratio" in capsys.readouterr().out


CASES = {f.__name__: f for f in (bench_loader, bench_featurepass, bench_inference, bench_distort,
                                  bench_reshape, bench_scaling, bench_cli,
                                  bench_cache_check)}  # fmt: skip


def test_every_bench_script_has_a_case() -> None:
    assert {p.stem for p in BENCH.glob("bench_*.py")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bench_script_runs_its_smallest_case(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(Path(str(BENCH)))
    CASES[name](monkeypatch, capsys)
