"""Preemption with real signals (subprocess + os.kill) and atomic Lightning checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from syndr_lightning.utils.errors import ConfigError

EXIT_PREEMPTED = 143  # utils.errors.EXIT_PREEMPTED (128 + SIGTERM)

TESTS = Path(__file__).resolve().parent
TINY = [
    "task_name=preempt",
    "model=tiny",
    "data=generated",
    "reshape=none",
    "trainer=cpu",
    "data.batch_size=4",
    "data.crop_size=32",
    "data.eval_crops=1",
    "data.train.options.n_refs=4",
    "data.train.options.n_types=2",
    "data.train.options.n_levels=3",
    "data.train.options.size=[40,48]",
    "data.test.0.options.n=6",
    "data.test.0.options.size=[40,48]",
    "data.test.1.options.n_refs=2",
    "data.test.1.options.size=[40,48]",
    "callbacks.rich_progress_bar=null",
    "logger=csv",
]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(
        SYNDR_LOG_DIR=str(tmp / "logs"),
        SYNDR_CACHE_DIR=str(tmp / "cache"),
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


def _start(tmp: Path, run: str | None, *extra: str, env: dict[str, str]) -> subprocess.Popen[str]:
    # run=None: Hydra's own (time-stamped) run folder, as a requeued job gets a new one.
    args = [*TINY, *([f"hydra.run.dir={tmp / run}"] if run else []), *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "syndr_lightning", *args],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _slow(marker: Path, epochs: int = 30) -> list[str]:
    return [
        f"trainer.max_epochs={epochs}",
        "+callbacks.slow._target_=preempt_helpers.SlowBatches",
        f"+callbacks.slow.marker={marker}",
    ]


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 240.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"training ended before the signal: {err[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("training did not start in time")
        time.sleep(0.1)


def _last_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_sigterm_saves_a_resumable_checkpoint_and_exits_143(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    env = _env(tmp_path)
    proc = _start(tmp_path, "run", *_slow(marker), env=env)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, err[-2000:]
    line = _last_line(err)
    ckpt = tmp_path / "run" / "checkpoints" / "preempted.ckpt"
    assert line.startswith("error: stopped by SIGTERM (preempted)"), line
    assert f"ckpt_path={ckpt}" in line
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["global_step"] >= 1 and "state_dict" in state
    assert not list((tmp_path / "run").rglob("*.tmp")), "a temporary was left behind"
    assert not (tmp_path / "run" / "metrics.json").exists()  # nothing reported as done
    # Resuming from it (by itself, as a requeued job) is tested below.


def test_slurm_sigusr1_requeues_and_the_requeued_job_resumes_by_itself(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol_calls"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "syndr",
        "SLURM_NTASKS": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "localhost",
    }
    env = _env(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **slurm)
    marker = tmp_path / "started"
    command = _slow(marker, epochs=2)  # the job script's command: the same when requeued
    proc = _start(tmp_path, None, *command, env=env)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGUSR1)  # SLURM's warning signal (sbatch --signal=USR1@90)
    end = time.monotonic() + 60
    while not calls.exists() and time.monotonic() < end:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGTERM)  # what SLURM sends when it requeues the job
    _out, err = proc.communicate(timeout=120)
    assert calls.read_text().split() == ["requeue", "4242"]
    (first,) = (tmp_path / "logs" / "preempt" / "runs").iterdir()
    assert list(first.glob("hpc_ckpt_*.ckpt")), "no SLURM checkpoint"
    assert proc.returncode == EXIT_PREEMPTED, err[-2000:]
    assert "a requeued SLURM job resumes by itself" in _last_line(err)

    # The requeued job (same job id, a new run folder, no ckpt_path) resumes by itself.
    time.sleep(1.1)  # a new time-stamped run folder
    again = _start(tmp_path, None, *command, env={**env, "SYNDR_TEST_SLOW_S": "0"})
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err[-2000:]
    assert "resuming from" in out + err
    assert str(first / "checkpoints" / "preempted.ckpt") in out + err
    assert len(list((tmp_path / "logs" / "preempt" / "runs").iterdir())) == 2
    assert not list((tmp_path / "logs" / ".preempted").iterdir())  # done: record dropped


def test_checkpoint_io_leaves_no_partial_file_under_its_name(tmp_path: Path) -> None:
    from syndr_lightning.callbacks.preemption import AtomicCheckpointIO

    target = tmp_path / "ckpts" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.ones(3)}, target)
    assert torch.load(target, weights_only=True)["w"].sum() == 3
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def _tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a full disk) needs root; not root here")
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (a container without CAP_SYS_ADMIN)")


@pytest.fixture
def small_disk(tmp_path: Path):
    disk = tmp_path / "disk"
    _tmpfs(disk, "256k")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_checkpoint_is_one_error_and_no_file(small_disk: Path) -> None:
    from syndr_lightning.callbacks.preemption import AtomicCheckpointIO
    from syndr_lightning.utils.errors import DiskFullError

    old = small_disk / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(4)}, old)
    before = old.read_bytes()
    with pytest.raises(DiskFullError, match="no space left"):
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(200_000)}, old)
    assert old.read_bytes() == before  # the previous complete file is untouched
    assert [p.name for p in small_disk.iterdir()] == ["last.ckpt"]


def test_max_epochs_zero_is_refused() -> None:
    from syndr_lightning.utils.runchecks import check_fit_length

    with pytest.raises(ConfigError, match=r"trainer\.max_epochs=0 would test untrained"):
        check_fit_length({"trainer": {"max_epochs": 0}})
    check_fit_length({"trainer": {"max_epochs": 1}})


def test_full_log_folder_during_training_is_one_line_and_no_partial_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hydra.core.global_hydra import GlobalHydra

    from syndr_lightning.__main__ import run_task
    from syndr_lightning.train import compose_config

    logs = tmp_path / "logs"
    _tmpfs(logs, "160k")  # the run files fit, the first checkpoint does not
    try:
        GlobalHydra.instance().clear()
        extra = [f"paths.cache_dir={tmp_path / 'cache'}", "trainer.max_epochs=1"]
        cfg = compose_config([*TINY[:-1], *extra], output_dir=logs / "run")
        with pytest.raises(SystemExit) as info:
            run_task(cfg)
        assert info.value.code == 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
        assert len(err) == 1 and "no space left" in err[0], err
        left = sorted(p.name for p in logs.rglob("*") if p.is_file())
        assert not [n for n in left if n.endswith((".ckpt", ".tmp"))], left
    finally:
        subprocess.run(["umount", "-l", str(logs)], check=False)
