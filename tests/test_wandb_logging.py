"""W&B as wandb resolves it (login in a netrc, WANDB_MODE, ``offline``), offline only
without any login; sweep jobs named after their overrides, one group per multirun (W&B
and TensorBoard). Nothing here contacts the network: WANDB_MODE=offline throughout."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from syndr_lightning import wandb_auth
from syndr_lightning.build import build_loggers
from syndr_lightning.compose import compose_config
from syndr_lightning.config import SWEPT_KEYS_ENV, sweep_run_name, swept_keys
from syndr_lightning.wandb_auth import resolve_wandb_mode

KEY = "a" * 40


def _netrc(tmp_path: Path, host: str = "api.wandb.ai") -> Path:
    path = tmp_path / "netrc"
    path.write_text(f"machine {host}\n  login user\n  password {KEY}\n")
    path.chmod(0o600)
    return path


@pytest.fixture()
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setattr(wandb_auth, "_NOTE_SHOWN", False)


def _entry(**kw: object):
    return OmegaConf.create({"_target_": "lightning.pytorch.loggers.WandbLogger", **kw})


def test_wandb_login_in_netrc_is_followed(tmp_path: Path, monkeypatch, no_login) -> None:
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path)))
    entry = _entry(offline=False)
    assert resolve_wandb_mode(entry) is None and entry.offline is False
    # A login for another server (WANDB_BASE_URL) is not a login for this one.
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert resolve_wandb_mode(_entry(offline=False)) is not None
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path, "wandb.example.org")))
    assert resolve_wandb_mode(_entry(offline=False)) is None


def test_wandb_mode_and_offline_setting_are_left_to_wandb(monkeypatch, no_login) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    entry = _entry(offline=False)
    assert resolve_wandb_mode(entry) is None and entry.offline is False
    monkeypatch.delenv("WANDB_MODE")
    assert resolve_wandb_mode(_entry(offline=True)) is None


def test_without_login_offline_is_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch, no_login
) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_config(["logger=wandb"], output_dir=tmp_path / "run")
    first = build_loggers(cfg)
    cfg2 = compose_config(["logger=wandb"], output_dir=tmp_path / "run2")
    second = build_loggers(cfg2)
    err = capsys.readouterr().err
    assert err.count("W&B: not logged in") == 1 and "wandb sync" in err
    assert cfg.logger.wandb.offline is True and cfg2.logger.wandb.offline is True
    assert first[0]._offline and second[0]._offline
    GlobalHydra.instance().clear()


def test_logged_in_wandb_runs_in_offline_sync_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch, no_login
) -> None:
    """With a login the logger is NOT forced offline; WANDB_MODE=offline (the mode a
    cluster without internet uses: `wandb sync` later) keeps this test off the network."""
    import wandb

    monkeypatch.setenv("NETRC", str(_netrc(tmp_path)))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = compose_config(["logger=wandb"], output_dir=tmp_path / "run")
    (logger,) = build_loggers(cfg)
    assert cfg.logger.wandb.offline is False and not logger._offline
    assert "not logged in" not in capsys.readouterr().err
    try:
        logger.log_metrics({"x": 1.0})
        run_dir = Path(logger.experiment.dir).parent
        assert run_dir.name.startswith("offline-run-")  # synced later with `wandb sync`
        # <task>-<backbone>-seed<seed> (the default data has no `target`)
        assert logger.experiment.name == "train-efficientnet_lite0-seed0"
    finally:
        wandb.finish()
    GlobalHydra.instance().clear()


def test_sweep_run_names_carry_the_overrides() -> None:
    name = sweep_run_name(
        ["+experiment=syn2auth", "reshape.T_f=0.05", "seed=1", "paths.data_dir=/d"]
    )
    assert name == "T_f=0.05,seed=1"
    # Clashing last components keep their full keys.
    assert sweep_run_name(["a.lr=1", "b.lr=2"]) == "a.lr=1,b.lr=2"
    # Only the swept keys, when the command line says which.
    argv = ["-m", "logger=many", "reshape.T_f=0.05,0.1", "seed=range(2)", "+x=a\\,b"]
    argv += ["data.size=[40,48]", "model=lite,biqa", "y='a,b'"]
    assert swept_keys(argv) == ["reshape.T_f", "seed", "model"]
    assert sweep_run_name(["logger=many", "reshape.T_f=0.1", "seed=1"], swept_keys(argv)) == (
        "T_f=0.1,seed=1"
    )


def test_multirun_jobs_get_distinct_names_and_one_group(tmp_path: Path, monkeypatch) -> None:
    """Two jobs of one multirun: names from their overrides, one shared group, in W&B's
    and TensorBoard's settings."""
    from hydra import compose, initialize_config_dir

    from syndr_lightning.config import conf_dir

    # What `syndr-train -m logger=many reshape.T_f=0.05,0.1 seed=0,1` tells its jobs.
    monkeypatch.setenv(SWEPT_KEYS_ENV, "reshape.T_f,seed")
    resolved = []
    for job, overrides in enumerate(
        (["reshape.T_f=0.05", "seed=0"], ["reshape.T_f=0.1", "seed=1"])
    ):
        GlobalHydra.instance().clear()
        sweep = f"hydra.sweep.dir={tmp_path / 'multi' / 'sweep-a'}"
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose("train", ["logger=many", sweep, *overrides], return_hydra_config=True)
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.overrides.task = ["logger=many", *overrides]
        cfg.hydra.job.num = job
        cfg.hydra.runtime.output_dir = str(tmp_path / str(job))
        HydraConfig.instance().set_config(cfg)
        resolved.append(OmegaConf.to_container(cfg.logger, resolve=True))
    names = [r["wandb"]["name"] for r in resolved]
    # task, backbone, seed, then the swept keys other than seed
    assert names == [
        "train-efficientnet_lite0-seed0-T_f=0.05",
        "train-efficientnet_lite0-seed1-T_f=0.1",
    ]
    assert [r["tensorboard"]["version"] for r in resolved] == names
    groups = {r["wandb"]["group"] for r in resolved}
    assert groups == {"train-sweep-a"}
    GlobalHydra.instance().clear()


def _job_config(tmp_path: Path, overrides: list[str], task: list[str], job: int = 0):
    """Compose ``overrides`` as job ``job`` of a multirun whose task overrides are ``task``."""
    from hydra import compose, initialize_config_dir

    from syndr_lightning.config import conf_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides, return_hydra_config=True)
    cfg.hydra.mode = RunMode.MULTIRUN
    cfg.hydra.overrides.task = task
    cfg.hydra.job.num = job
    cfg.hydra.runtime.output_dir = str(tmp_path / str(job))
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_run_names_groups_and_tags_of_experiments(tmp_path: Path, monkeypatch) -> None:
    """Experiment, target, backbone and seed in the name; the experiment's tags; a group per
    table (``run_group``, what `syndr reproduce` sets) over the sweep's own group."""
    monkeypatch.delenv(SWEPT_KEYS_ENV, raising=False)
    cfg = compose_config(["+experiment=syn2auth", "target=koniq10k", "seed=2", "logger=many"])
    wandb_cfg = OmegaConf.to_container(cfg.logger.wandb, resolve=True)
    assert wandb_cfg["name"] == "syn2auth-koniq10k-resnet50-seed2"
    assert wandb_cfg["group"] == "syn2auth"
    assert wandb_cfg["tags"] == ["syn2auth", "koniq10k"]
    assert cfg.logger.tensorboard.version == wandb_cfg["name"]
    named = compose_config(["run_name=my-run", "run_group=table5", "logger=wandb"])
    assert (named.logger.wandb.name, named.logger.wandb.group) == ("my-run", "table5")
    # A sweep job: swept keys appended (target and seed are in the name already), the
    # sweep's tag; run_group wins over the sweep's own group.
    monkeypatch.setenv(SWEPT_KEYS_ENV, "reshape.T_u,target,seed")
    task = ["+experiment=syn2auth", "reshape.T_u=10", "target=bid", "seed=1"]
    over = [*task, "+hparams_search=T_u", "logger=wandb"]
    job = _job_config(tmp_path, over, task)
    resolved = OmegaConf.to_container(job.logger.wandb, resolve=True)
    assert resolved["name"] == "syn2auth-bid-resnet50-seed1-T_u=10"
    assert resolved["group"] == job.sweep_group and resolved["group"].startswith("syn2auth-T_u-")
    assert resolved["tags"] == ["syn2auth", "bid", "T_u"]
    assert job.callbacks.dashboard.sweep is True  # no checkpoint artifacts from sweep jobs
    job = _job_config(tmp_path, [*over, "run_group=table7"], task)
    assert job.logger.wandb.group == "table7"
    # Nothing known about the sweep: the job number keeps names apart.
    monkeypatch.delenv(SWEPT_KEYS_ENV)
    job = _job_config(tmp_path, ["logger=wandb", "seed=0"], ["seed=0"], job=3)
    assert job.logger.wandb.name == "train-efficientnet_lite0-seed0-job3"
    GlobalHydra.instance().clear()
