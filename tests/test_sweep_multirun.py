"""The hparams_search configs compose with the paper's grids; a real 2-job multirun
(Optuna, tiny generated data, tiny_cnn, 1 epoch) completes on the CPU and is collected;
a multirun that asks for DDP is refused before anything trains."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from syndr_lightning.config import conf_dir
from syndr_lightning.reporting import collect
from syndr_lightning.utils.errors import ConfigError

PAPER_GRIDS = {
    "k": [1, 3, 5, 10, "all"],
    "T_ref": [0.05, 0.1],
    "T_q": [0.5, 1.0, 1.5],
    "T_f": [0.05, 0.1, 0.15],
    "T_u": [10, 20, 30],
}

# Tiny offline data: 4 generated references x 2 types x 3 levels at 48x64, 32 px crops.
TINY = [
    "model=tiny",
    "debug=cpu",
    "reshape.ddcup=false",  # DRCDown (what the thresholds act on) without DDCUp's build
    "data.train.options.n_refs=4",
    "data.train.options.n_types=2",
    "data.train.options.n_levels=3",
    "data.train.options.size=[48,64]",
    "data.test=null",
    "data.crop_size=32",
    "data.eval_crops=1",
]


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("name", sorted(PAPER_GRIDS))
def test_one_at_a_time_sweeps_use_the_paper_grids(name: str) -> None:
    cfg = _compose(["+experiment=syn2auth", f"+hparams_search={name}", "logger=wandb"])
    params = dict(cfg.hydra.sweeper.params)
    assert set(params) == {f"reshape.{name}", "seed"}
    parser = OverridesParser.create()
    sweep = parser.parse_override(f"reshape.{name}={params[f'reshape.{name}']}")
    assert list(sweep.sweep_iterator()) == PAPER_GRIDS[name]
    # the one-at-a-time sweeps reproduce Tables 5-7 under the paper protocol (no
    # validation split): nothing is optimised; Optuna's search keeps val/srcc
    assert cfg.optimized_metric is None
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    # Every job of a sweep logs into one W&B group named after the sweep folder.
    group = cfg.logger.wandb.group
    assert group.startswith(f"syn2auth-{name}-") and group == cfg.sweep_group
    GlobalHydra.instance().clear()


def test_optuna_search_over_all_five() -> None:
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    cfg = _compose(["+experiment=syn2auth", "+hparams_search=optuna"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert set(sweeper.params) == {f"reshape.{k}" for k in PAPER_GRIDS}
    parser = OverridesParser.create()
    for key, text in sweeper.params.items():
        dist = create_optuna_distribution_from_override(parser.parse_override(f"{key}={text}"))
        name = key.split(".")[1]
        grid = [v for v in PAPER_GRIDS[name] if v != "all"]
        if hasattr(dist, "choices"):
            assert set(PAPER_GRIDS[name]) <= set(dist.choices)
        else:  # the range spans the paper's grid
            assert dist.low <= min(grid) and dist.high >= max(grid)
    GlobalHydra.instance().clear()


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    paths = [
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
    ]
    return subprocess.run(
        [sys.executable, "-m", "syndr_lightning", "-m", *args, *paths],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_two_job_optuna_multirun_is_collected(tmp_path: Path) -> None:
    proc = _run(["+hparams_search=optuna", "hydra.sweeper.n_trials=2", *TINY], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / "multirun"
    # The last line names the sweep folder, which `syndr sweep collect` reads.
    assert proc.stdout.strip().splitlines()[-1].startswith(f"sweep folder: {root} ")
    jobs = sorted(p for p in root.iterdir() if (p / "metrics.json").is_file())
    assert [p.name for p in jobs] == ["0", "1"]
    # The task returned val/srcc to Optuna: the study's best value is the best job's.
    best = yaml.safe_load((root / "optimization_results.yaml").read_text())["best_value"]
    summary = collect(root, out_dir=tmp_path / "tables")
    assert summary.n_jobs == 2 and summary.n_failed == 0
    assert summary.keys == [f"reshape.{k}" for k in ("k", "T_ref", "T_q", "T_f", "T_u")]
    srcc = summary.table["val/srcc/mean"]
    assert len(srcc) == 2 and all(math.isfinite(v) for v in srcc)
    assert best == pytest.approx(max(srcc))
    md = summary.markdown_path.read_text()
    assert md.startswith("### Sweep optuna") and "Optuna best objective" in md
    assert summary.csv_path.is_file()
    # Both jobs (two Hydra job launches) resolved the same W&B group: the sweep's.
    resolved = [yaml.safe_load((p / "config_resolved.yaml").read_text()) for p in jobs]
    groups = {r["sweep_group"] for r in resolved}
    assert len(groups) == 1 and next(iter(groups)).startswith("debug-optuna-20")


def test_multirun_with_ddp_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """The entry point's task wrapper refuses DDP inside a multirun with one stderr line."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from syndr_lightning.__main__ import run_task

    cfg = _compose(["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *TINY])
    cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(cfg)
    # Never reached: the check runs before the task.
    cfg.task = "syndr_lightning.no_such_module.train"
    try:
        with pytest.raises(SystemExit) as exit_info:
            run_task(cfg)
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "one device per job" in err[0]


def test_slurm_launcher_one_gpu_per_job_and_ddp_slurm_layout() -> None:
    from syndr_lightning.utils.launch import check_sweep_devices

    cfg = _compose(["+experiment=syn2auth", "+hparams_search=T_f", "hydra/launcher=slurm"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (1, 1, 1)
    check_sweep_devices(cfg.trainer, "MULTIRUN", launcher._target_, launcher.tasks_per_node)
    # One multi-node DDP run: tasks per node must equal the GPUs per node.
    over = ["trainer=ddp_slurm", "trainer.num_nodes=2", "hydra/launcher=slurm"]
    cfg = _compose(["+experiment=syn2auth", *over, "hydra.launcher.tasks_per_node=4"])
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.devices == 4
    target = cfg.hydra.launcher._target_
    check_sweep_devices(cfg.trainer, "MULTIRUN", target, cfg.hydra.launcher.tasks_per_node)
    with pytest.raises(ConfigError, match="tasks_per_node"):
        check_sweep_devices(cfg.trainer, "MULTIRUN", target, 1)
    GlobalHydra.instance().clear()
