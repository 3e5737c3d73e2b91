"""Logs of a run without a terminal: each line once, no third-party noise, one line per
epoch, the results table and the run folder in the log file and on stdout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from syndr_lightning.callbacks.epoch_log import epoch_line

TINY = [
    "model=tiny",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "data.batch_size=8",
    "data.crop_size=32",
    "data.eval_crops=1",
    "data.train.options.n_refs=6",
    "data.train.options.n_types=2",
    "data.train.options.variants=1",
    "data.train.options.size=[40,48]",
    "data.test=null",
    "data.candidates.options.n=12",
    "data.candidates.options.size=[40,48]",
    "reshape.encoder_crop=64",
    "reshape.select_candidates=false",
    "reshape.T_u=2",
    "logger=csv",
]


def test_epoch_line_format() -> None:
    line = epoch_line(
        2,
        6,
        {"train/loss": 0.8123, "val/srcc": 0.5, "val/plcc": 0.25, "drcdown/kept": 306.0,
         "drcdown/total": 375.0, "drcdown/clusters": 87.0},
        83.4,
    )  # fmt: skip
    assert line == (
        "epoch 3/6: loss 0.8123 | val srcc 0.5000 plcc 0.2500 | "
        "DRCDown kept 306/375, 87 clusters | 1m23s"
    )


def test_piped_run_logs_each_line_once(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SYNDR_CACHE_DIR": str(tmp_path / "cache"),
        "SYNDR_LOG_DIR": str(tmp_path / "logs"),
    }
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "syndr_lightning", *TINY, f"hydra.run.dir={run_dir}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out, err = proc.stdout, proc.stderr
    epochs = re.findall(r"epoch (\d)/2: loss [\d.]+ \| val srcc .* \| DRCDown kept \d+/\d+", out)
    assert epochs == ["1", "2"], out[-3000:]
    both = out + err
    for noise in ("Could not load library", "Total FLOPs", "Tip:", "litlogger"):
        assert noise not in both, noise
    # Lightning's lines once (before: its own stderr line and Hydra's copy on stdout).
    assert both.count("Seed set to 0") == 1
    assert both.count("GPU available:") == 1
    log = (run_dir / "train.log").read_text()
    assert re.search(r"epoch 2/2: loss", log)
    assert "SynDR-IQA results" in out and "SynDR-IQA results" in log
    assert f"run folder: {run_dir}" in out and f"run folder: {run_dir}" in log
    # the upsampled set is announced once per process, built or reused
    assert both.count("DDCUp: reusing") <= 1
