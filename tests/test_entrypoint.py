"""``python -m syndr_lightning`` as a user runs it (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = [
    "trainer.max_epochs=1",
    "data.batch_size=8",
    "data.crop_size=32",
    "data.eval_crops=2",
    "data.train.options.n_refs=5",
    "data.train.options.n_types=2",
    "data.train.options.n_levels=3",
    "data.train.options.size=[40,48]",
    "data.test.0.options.n=8",
    "data.test.0.options.size=[40,48]",
    "data.test.1.options.n_refs=2",
    "data.test.1.options.size=[40,48]",
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SYNDR_LOG_DIR=str(tmp_path / "logs"),
        SYNDR_CACHE_DIR=str(tmp_path / "cache"),
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
    )
    return env


def _main(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Run from an unrelated folder: nothing may depend on the working directory.
    return subprocess.run(
        [sys.executable, "-m", "syndr_lightning", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _tiny_run_args() -> list[str]:
    """``+experiment=demo`` while it is the tiny-CNN demo of the training task.

    Once conf/experiment/demo.yaml runs its own task (the full offline demo, tested with
    it), the same tiny training is selected with groups on the default config.
    """
    from syndr_lightning.config import REPO_ROOT

    text = (REPO_ROOT / "conf" / "experiment" / "demo.yaml").read_text()
    if "task:" not in text:
        return ["+experiment=demo"]
    return ["model=tiny", "reshape=none", "trainer=cpu", "task_name=demo"]


def test_entry_point_trains_end_to_end(tmp_path: Path) -> None:
    proc = _main(tmp_path, *_tiny_run_args(), *TINY, "callbacks.rich_progress_bar=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SRCC" in proc.stdout and "PLCC" in proc.stdout
    runs = list((tmp_path / "logs" / "demo" / "runs").iterdir())
    assert len(runs) == 1
    run = runs[0]
    for name in ("config_resolved.yaml", "run_info.json", "metrics.json"):
        assert (run / name).is_file(), name
    assert (run / ".hydra" / "overrides.yaml").is_file()
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert "val/srcc" in metrics and "test/authentic_like/plcc" in metrics
    info = json.loads((run / "run_info.json").read_text())
    assert "trainer.max_epochs=1" in info["overrides"]


def test_user_error_is_one_line_and_nonzero(tmp_path: Path) -> None:
    proc = _main(tmp_path, "model.backbone=resnet18")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: model.backbone='resnet18' is unknown; allowed values")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("override", "needle", "code"),
    [
        ("reshape.T_f=3", "reshape.T_f=3", 2),
        # the data protocol and the encoder: checked before the Trainer is built
        ("+data.candidate_pool.size=0", "data.candidate_pool.size=0", 2),
        ("reshape.encoder=vgg", "reshape.encoder='vgg'", 2),
        ("+data.ddcup_reference_set=every", "data.ddcup_reference_set='every'", 2),
        ("+data.label_scaling=paper", "data.label_scaling='paper'", 2),
        ("task=syndr_lightning.nowhere.run", "task='syndr_lightning.nowhere.run'", 2),
        # reshaping switched on for a data module that cannot reshape: a config mistake
        ("data=kadid10k", "reshape=none", 2),
        # missing data: exit status 1, as in every `syndr` command
        ("data=kadid10k reshape=none", "data.train.root=", 1),
    ],
)
def test_run_task_reports_errors_in_one_line(
    tmp_path: Path, override: str, needle: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from hydra.core.global_hydra import GlobalHydra

    from syndr_lightning.__main__ import run_task
    from syndr_lightning.train import compose_config

    GlobalHydra.instance().clear()
    cfg = compose_config([*override.split(), f"paths.data_dir={tmp_path}"], tmp_path / "out")
    with pytest.raises(SystemExit) as info:
        run_task(cfg)
    assert info.value.code == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0]
