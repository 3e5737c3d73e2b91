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
        "epoch 2/5: loss 0.8123 | val srcc 0.5000 plcc 0.2500 | "
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
    epochs = re.findall(r"epoch (\d)/1: loss [\d.]+ \| val srcc .* \| DRCDown kept \d+/\d+", out)
    assert epochs == ["0", "1"], out[-3000:]
    both = out + err
    for noise in ("Could not load library", "FLOPs", "Flops", "Tip:", "litlogger"):
        assert noise not in both, noise
    # Lightning's lines once (before: its own stderr line and Hydra's copy on stdout).
    assert both.count("Seed set to 0") == 1
    assert both.count("GPU available:") == 1
    log = (run_dir / "train.log").read_text()
    assert re.findall(r"epoch (\d)/1: loss", log) == ["0", "1"]
    assert "SynDR-IQA results" in out and "SynDR-IQA results" in log
    assert f"run folder: {run_dir}" in out and f"run folder: {run_dir}" in log
    # the upsampled set is announced once per process, built or reused
    assert both.count("DDCUp: reusing") <= 1


def _run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """Run ``args`` with stdout and stderr on a pseudo-terminal (120 columns); its output."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                raise TimeoutError("no output from the run under the pseudo-terminal")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        proc.wait(timeout=60)
    assert proc.returncode == 0, b"".join(chunks)[-3000:].decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_terminal_run_shows_drcdown_every_epoch_with_one_numbering(tmp_path: Path) -> None:
    """Under a terminal (a live progress bar) the epoch line still shows, with DRCDown's
    kept count, above the bar; train.log has one line per epoch; the bar, the epoch line
    and the results table number epochs alike."""
    env = {
        **os.environ,
        "SYNDR_CACHE_DIR": str(tmp_path / "cache"),
        "SYNDR_LOG_DIR": str(tmp_path / "logs"),
        "TERM": "xterm",
        "COLUMNS": "120",
    }
    env.pop("NO_COLOR", None)
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "syndr_lightning", *TINY, f"hydra.run.dir={run_dir}"]
    out = _run_in_terminal([*args, "data.val_fraction=0.3"], env)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out).replace("\r", "\n")
    shown = re.findall(r"epoch (\d)/1: loss [\d.]+ \| val srcc .* \| DRCDown kept \d+/\d+", text)
    assert sorted(set(shown)) == ["0", "1"], text[-3000:]
    assert re.search(r"Epoch 1/1", text), text[-3000:]  # Lightning's bar: from 0 as well
    best = re.search(r"best val/srcc \(epoch (\d)\)", text)
    assert best is not None and best.group(1) in ("0", "1"), text[-3000:]
    log = (run_dir / "train.log").read_text()
    assert re.findall(r"epoch (\d)/1: loss .* DRCDown kept", log) == ["0", "1"], log[-3000:]
