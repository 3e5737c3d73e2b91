"""A 2-process DDP run on the CPU (gloo), launched as users do: through the entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch


def test_ddp_two_processes_complete_an_epoch(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        SYNDR_LOG_DIR=str(tmp_path / "logs"),
        SYNDR_CACHE_DIR=str(tmp_path / "cache"),
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
    )
    # 5 refs x 2 types x 3 levels; 1 reference held out -> 24 training images.
    args = [
        "model=tiny",
        "reshape=none",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",
        "task_name=ddp",
        "trainer.max_epochs=1",
        "data.batch_size=4",
        "data.crop_size=32",
        "data.eval_crops=2",
        "data.train.options.n_refs=5",
        "data.train.options.n_types=2",
        "data.train.options.n_levels=3",
        "data.train.options.variants=1",  # one shot per reference (the default has 3)
        "data.train.options.size=[40,48]",
        "data.test.0.options.n=8",
        "data.test.0.options.size=[40,48]",
        "data.test.1.options.n_refs=2",
        "data.test.1.options.size=[40,48]",
        "callbacks.rich_progress_bar=null",
        "callbacks.lr_monitor=null",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "syndr_lightning", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (run,) = list((tmp_path / "logs" / "ddp" / "runs").iterdir())
    assert (run / "train_ddp_process_1.log").is_file()  # the second rank ran
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert "val/srcc" in metrics and "test/authentic_like/srcc" in metrics
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # Each rank saw half of the 24 images: 12 / batch 4 = 3 steps (6 on one process).
    assert last["epoch"] == 0 and last["global_step"] == 3
