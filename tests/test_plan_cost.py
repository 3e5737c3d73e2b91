"""``syndr reproduce --plan``: per-backbone cost without a measurement, replaced by
gpu_bench records and by finished runs; each cell's protocol differences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syndr_lightning.cli import main as syndr_main
from syndr_lightning.paper.cost import DEFAULT_RATES, estimated_epoch_seconds, training_images
from syndr_lightning.paper.plan import RUN_FILE, campaign, gpu_hours


def test_cost_per_backbone_and_dataset_size(tmp_path: Path) -> None:
    runs, cells = campaign(["8"], 1)
    swin = cells[("8", "swin_t-syndr", "livec", 0)]
    vit = cells[("8", "vit_b_16-syndr", "livec", 0)]
    base = cells[("8", "vit_b_16-baseline", "livec", 0)]
    hours = {r.folder: gpu_hours(r, 24, None, {}) for r in (swin, vit, base)}
    assert hours[vit.folder] > hours[swin.folder] > 0  # ViT-B/16 is the slower backbone
    assert hours[base.folder] < hours[vit.folder]  # no DDCUp images, no feature pass
    # LIVEC's 6 types: 74 refs x 6 x 5 + DDCUp's 81 x 6 x 3
    assert training_images("syn2auth", ("target=livec",), True) == 74 * 30 + 81 * 18
    assert training_images("intra", (), True) == 65 * 125 + 81 * 75
    want = 24 * estimated_epoch_seconds("vit_b_16", 74 * 30 + 81 * 18, True) / 3600
    assert hours[vit.folder] == pytest.approx(want)
    # a finished ViT run's record replaces the estimate for that backbone only
    (tmp_path / vit.folder).mkdir(parents=True)
    (tmp_path / vit.folder / RUN_FILE).write_text(json.dumps({"seconds_per_epoch": 600.0}))
    from syndr_lightning.paper.plan import recorded_epoch_seconds

    recorded = recorded_epoch_seconds(tmp_path, runs)
    assert gpu_hours(base, 24, None, recorded) == pytest.approx(24 * 600 / 3600)
    assert gpu_hours(swin, 24, None, recorded) == pytest.approx(hours[swin.folder])


def test_plan_uses_gpu_bench_and_prints_protocol_differences(tmp_path: Path, capsys) -> None:
    bench = {
        "meta": {"mode": "gpu"},
        "throughput": [
            {
                "what": "training step (loader + model)",
                "images_per_s": DEFAULT_RATES["resnet50"][0] * 2,
            },
            {
                "what": "DRCDown feature pass (loader + model)",
                "images_per_s": DEFAULT_RATES["resnet50"][1] * 2,
            },
        ],
    }
    args = ["reproduce", "--plan", "--tables", "1", "--seeds", "1", "--out", str(tmp_path)]
    assert syndr_main(args) == 0
    default = capsys.readouterr().out
    (tmp_path / "gpu_bench_results.json").write_text(json.dumps(bench))
    assert syndr_main(args) == 0
    measured = capsys.readouterr().out
    assert "default rates" in default and "gpu_bench_results.json" in measured
    t, f = DEFAULT_RATES["vit_b_16"]  # other backbones scaled by the measured ResNet-50
    assert f"vit_b_16 {2 * t:.0f}/{2 * f:.0f} img/s" in measured
    assert f"vit_b_16 {t:.0f}/{f:.0f} img/s" in default
    # footnotes as the report writes them: the baseline row only differs in selection
    assert "protocol differences per cell" in default
    notes = {
        line.split("] ", 1)[0] + "]": line.split("] ", 1)[1]
        for line in default.splitlines()
        if line.startswith("[")
    }
    rows = {
        line.split()[2]: line.split()[3]
        for line in default.splitlines()
        if line.startswith("  table")
    }
    assert notes[rows["baseline"]] == "selection: last (authors: best epoch on the test set)"
    assert "DRCDown position defect" in notes[rows["syndr"]]
