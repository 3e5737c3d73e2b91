"""The built wheel works outside the repository: packaged configs, outputs in the working
directory (never in site-packages), the ``syndr-train`` console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from syndr_lightning.config import REPO_ROOT

TINY = [
    "model=tiny",
    "reshape=none",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "data.batch_size=8",
    "data.crop_size=32",
    "data.eval_crops=1",
    "data.train.options.n_refs=4",
    "data.train.options.n_types=2",
    "data.train.options.n_levels=2",
    "data.train.options.size=[40,48]",
    "data.test=null",
    "callbacks.rich_progress_bar=null",
]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_wheel_installs_and_trains_from_an_unrelated_folder(tmp_path: Path) -> None:
    # Build from a copy, so the checkout gets no build/ or egg-info.
    src = tmp_path / "src"
    for name in ("syndr_lightning", "conf"):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO_ROOT / name, src / name)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SYNDR_", "PYTHON"))}
    clean.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")
    pip = [sys.executable, "-m", "pip"]
    _run(
        [
            *pip,
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        tmp_path,
        clean,
    )
    wheel = next((tmp_path / "dist").glob("syndr_lightning-*.whl"))

    # A fresh environment that sees the project's environment (torch, ...) through a .pth.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, clean)
    vpy = venv / "bin" / "python"
    site = Path(
        _run(
            [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            tmp_path,
            clean,
        ).stdout.strip()
    )
    (site / "project_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([*pip, "--python", str(vpy), "install", "-q", "--no-deps", str(wheel)], tmp_path, clean)

    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(vpy), "-c", "import syndr_lightning as s; print(s.__file__)"], work, clean)
    assert Path(where.stdout.strip()).is_relative_to(site), (
        "imported from the checkout, not the wheel"
    )
    assert (site / "syndr_lightning" / "conf" / "train.yaml").is_file()
    assert (site / "syndr_lightning" / "paper" / "paper_results.json").is_file()  # syndr reproduce

    train = str(venv / "bin" / "syndr-train")
    job = _run([train, "--cfg", "job"], work, clean)
    assert "_target_: syndr_lightning.data" in job.stdout
    paths = _run([train, "--cfg", "job", "--resolve", "--package", "paths"], work, clean).stdout
    assert str(work / ".cache") in paths and str(site) not in paths

    _run([train, *TINY], work, clean)
    runs = list((work / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "train.log").is_file()
    assert "val/srcc" in json.loads((runs[0] / "metrics.json").read_text())["metrics"]
    assert not list(site.rglob("*.ckpt")) and not (site / "logs").exists()
    version = _run([str(venv / "bin" / "syndr"), "--version"], work, clean)
    assert version.stdout.startswith("syndr-lightning ")
