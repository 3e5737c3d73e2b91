"""Tracebacks and silent deaths turned into one line with the exit-code table's code
(issue 32): a malformed environment setting, SIGTERM while DDCUp's set is built, SIGUSR1
outside SLURM."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

from syndr_lightning.cli import main as syndr
from syndr_lightning.utils.errors import PreemptedError, exit_code


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_malformed_max_image_pixels_is_refused_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from syndr_lightning.fakedata.synthetic import generate_synthetic_iqa

    csv = generate_synthetic_iqa(tmp_path / "d", n_refs=2, n_types=1, n_levels=2)
    monkeypatch.setenv("SYNDR_MAX_IMAGE_PIXELS", "abc")
    assert syndr(["data", "check", "csv", str(csv)]) == 2  # not "4 images unreadable", 1
    line = _err_line(capsys)
    assert "SYNDR_MAX_IMAGE_PIXELS='abc'" in line and "positive integer" in line


def test_sigterm_while_ddcup_builds_is_one_line_143(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syndr_lightning.data import syndr_build
    from syndr_lightning.data.syndr import SynDRDataModule
    from syndr_lightning.fakedata.fixtures import write_fixture
    from syndr_lightning.reshape.params import ReshapeParams

    kadid = write_fixture("kadid10k", tmp_path / "kadid", n_refs=3, types=[1])
    kadis = write_fixture("kadis700k", tmp_path / "kadis", n_refs=3)

    def killed(*args: object, **kwargs: object) -> None:
        # Python's default action would end the test run itself: fail instead.
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "SIGTERM unhandled"
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler stops the job mid-build
        raise AssertionError("SIGTERM did not stop the build")

    monkeypatch.setattr(syndr_build, "build_upsampled_set", killed)
    dm = SynDRDataModule(
        train={"name": "kadid10k", "root": str(kadid), "options": {"types": [1]}},
        candidates={"name": "folder", "root": str(kadis / "ref_imgs")},
        reshape=ReshapeParams.from_config(
            {"encoder": "tiny_cnn", "encoder_weights": "none", "drcdown": False}
        ),
        cache_dir=str(tmp_path / "cache"),
        crop_size=16,
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with pytest.raises(PreemptedError, match="while building DDCUp's upsampled set") as info:
        dm.prepare_data()
    assert exit_code(info.value) == 143 and "\n" not in str(info.value)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_sigusr1_outside_slurm_is_logged_not_fatal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from syndr_lightning.utils.signals import sigusr1_outside_slurm

    for key in ("SLURM_NTASKS", "SLURM_JOB_NAME"):
        monkeypatch.delenv(key, raising=False)
    # Python's default (a run in this process may have left its handler installed)
    before = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    try:
        sigusr1_outside_slurm()
        with caplog.at_level(logging.WARNING):
            os.kill(os.getpid(), signal.SIGUSR1)  # the default action would kill pytest
        assert "SIGUSR1 received outside SLURM" in caplog.text
    finally:
        signal.signal(signal.SIGUSR1, before)
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    try:
        sigusr1_outside_slurm()  # under SLURM it is Lightning's requeue signal: left alone
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGUSR1, before)


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [("--k", "0", "--k=0"), ("--t-ref", "-1", "--t-ref=-1"), ("--temperature", "0", "")],
)
def test_reshape_up_range_errors_exit_2_like_reshape_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, needle: str
) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp_path / "tr.npy", rng.standard_normal((4, 6)))
    np.save(tmp_path / "ca.npy", rng.standard_normal((8, 6)))
    np.save(tmp_path / "lab.npy", rng.uniform(1, 5, (4, 2, 3)))
    out = tmp_path / "up.npz"
    args = ["reshape", "up", "--out", str(out), "--weights", "softmin"]
    for name, opt in (("tr", "--train-refs"), ("ca", "--candidates"), ("lab", "--labels")):
        args += [opt, str(tmp_path / f"{name}.npy")]
    assert syndr([*args, flag, value]) == 2
    assert needle in _err_line(capsys) and not out.exists()


@pytest.mark.parametrize(
    ("flag", "value"), [("--crop-size", "100000"), ("--workers", "-1"), ("--crops", "0")]
)
@pytest.mark.parametrize("command", ["predict", "eval"])
def test_scoring_options_are_range_checked_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, flag: str, value: str
) -> None:
    from inference_helpers import write_image

    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")  # never opened: the options are refused first
    image = write_image(tmp_path / "a.png", 0)
    out = tmp_path / "out.csv"
    if command == "predict":
        args = ["predict", "--ckpt", str(junk), str(image), "--out", str(out)]
    else:
        args = ["eval", "--ckpt", str(junk), "--data", "folder", str(tmp_path), "--out", str(out)]
    assert syndr([*args, flag, value]) == 2
    assert flag in _err_line(capsys) and not out.exists()


def test_eval_output_folder_is_refused_before_scoring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    folder = tmp_path / "results"
    folder.mkdir()
    args = ["eval", "--ckpt", str(junk), "--data", "folder", str(tmp_path), "--out", str(folder)]
    assert syndr(args) == 2  # the output path first, not the checkpoint (1) after loading
    assert str(folder) in _err_line(capsys)


@pytest.mark.parametrize("case", ["missing", "folder", "truncated", "not-lightning"])
def test_bad_resume_checkpoint_is_one_line_before_work(tmp_path: Path, case: str) -> None:
    import torch
    from hydra.core.global_hydra import GlobalHydra
    from inference_helpers import make_checkpoint

    from syndr_lightning.train import compose_config, train
    from syndr_lightning.utils.errors import ConfigError, InputError

    ckpt = tmp_path / "x.ckpt"
    if case == "folder":
        ckpt.mkdir()
    elif case == "truncated":
        good = make_checkpoint(tmp_path / "good.ckpt").read_bytes()
        ckpt.write_bytes(good[: len(good) // 2])
    elif case == "not-lightning":
        torch.save({"weight": torch.zeros(2)}, ckpt)
    GlobalHydra.instance().clear()
    out = tmp_path / "run"
    overrides = ["model=tiny", "data=generated", "reshape=none", "trainer=cpu"]
    cfg = compose_config(
        [*overrides, f"ckpt_path={ckpt}", f"paths.cache_dir={tmp_path / 'c'}"], output_dir=out
    )
    expected = ConfigError if case in ("missing", "folder") else InputError
    with pytest.raises(expected, match="ckpt_path") as info:
        train(cfg)
    assert "\n" not in str(info.value)
    assert exit_code(info.value) == (2 if expected is ConfigError else 1)


def _mount_tmpfs(path: Path, options: str) -> Path:
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("a full or read-only disk is simulated with a tmpfs, which needs root")
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    return path


@pytest.mark.parametrize(("disk", "code"), [("full", 1), ("read-only", 2)])
def test_run_folder_on_a_full_or_read_only_disk_is_one_line(
    tmp_path: Path, disk: str, code: int
) -> None:
    import subprocess
    import sys

    options = "size=64k" if disk == "full" else "size=64k,ro"
    mount = _mount_tmpfs(tmp_path / "disk", options)
    try:
        if disk == "full":
            with open(mount / "filler", "wb") as fh, pytest.raises(OSError):
                fh.write(b"\0" * (128 * 1024))
                fh.flush()
        run_dir = mount / "run"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        done = subprocess.run(
            [sys.executable, "-m", "syndr_lightning", "model=tiny", f"hydra.run.dir={run_dir}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        err = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == code, done.stderr
        assert len(err) == 1 and "Traceback" not in done.stderr, err
        assert "run folder" in err[0] and str(run_dir) in err[0]
        assert not run_dir.exists()  # no empty .hydra/config.yaml or job log left
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
