"""Every config composes and instantiates; bad configs name the key and allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from syndr_lightning.build import build_datamodule, build_loggers, instantiate, instantiate_mapping
from syndr_lightning.compose import compose_config
from syndr_lightning.config import REPO_ROOT, conf_dir
from syndr_lightning.reshape import BACKENDS
from syndr_lightning.run_config import RunConfig
from syndr_lightning.utils.errors import ConfigError, DatasetError

validate_config = RunConfig.from_config  # every check, before anything is built

EXPERIMENTS = sorted(p.stem for p in (REPO_ROOT / "conf" / "experiment").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _clean_hydra() -> None:
    GlobalHydra.instance().clear()


def _paths(tmp_path: Path) -> list[str]:
    return [
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]


def test_train_yaml_defaults_leave_experiment_and_hparams_search_out() -> None:
    defaults = yaml.safe_load((conf_dir() / "train.yaml").read_text())["defaults"]
    keys = [next(iter(d)) if isinstance(d, dict) else d for d in defaults]
    assert keys[0] == "_self_"
    for group in ("paths", "data", "model", "reshape", "callbacks", "logger", "trainer", "hydra"):
        assert group in keys
    assert "optional debug" in keys
    assert not any("experiment" in k or "hparams_search" in k for k in keys)


def test_paths_do_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("SYNDR_ROOT", "SYNDR_DATA_DIR", "SYNDR_CACHE_DIR", "SYNDR_LOG_DIR"):
        monkeypatch.delenv(var, raising=False)
    cfg = compose_config([], output_dir=tmp_path / "out")
    assert Path(cfg.paths.root_dir) == REPO_ROOT
    assert Path(cfg.paths.data_dir) == REPO_ROOT / "data"
    assert Path(cfg.paths.output_dir) == (tmp_path / "out").resolve()
    monkeypatch.setenv("SYNDR_DATA_DIR", str(tmp_path / "datasets"))
    GlobalHydra.instance().clear()
    assert compose_config([]).paths.data_dir == str(tmp_path / "datasets")


def test_conf_dir_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDR_CONF_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"has no train\.yaml"):
        conf_dir()


def test_reshape_configs_have_exactly_the_syndr_keys() -> None:
    from syndr_lightning.reshape.params import ReshapeParams

    defaults = ReshapeParams().flat()
    for name in ("syndr", "lite", "none"):
        # data=generated: the default data's quickstart settings (T_u=4) stay out
        cfg = compose_config([f"reshape={name}", "data=generated"])
        assert set(cfg.reshape) == set(defaults), name
        for key in ("k", "T_ref", "T_q", "T_f", "T_u"):
            assert cfg.reshape[key] == defaults[key]
    assert compose_config(["reshape=none"]).reshape.ddcup is False


# demo.yaml runs its own task (tests/test_demo.py builds and runs it)
@pytest.mark.parametrize("experiment", [None, *(e for e in EXPERIMENTS if e != "demo")])
def test_config_composes_and_instantiates(
    experiment: str | None, tmp_path: Path, imagenet_hub: dict
) -> None:
    """Compose the default config and every conf/experiment/*.yaml and build its objects.

    Offline adaptations only: published ImageNet weights come from stand-in files in
    torch's download cache (conftest ``imagenet_hub``), the trainer runs on the CPU, and
    real datasets may be absent (then validation must say so by naming the data key).
    """
    overrides = [f"+experiment={experiment}"] if experiment else []
    cfg = compose_config([*overrides, *_paths(tmp_path)], output_dir=tmp_path / "out")
    OmegaConf.resolve(cfg)
    try:
        run = validate_config(cfg)
    except DatasetError as exc:
        assert "data." in str(exc) and ".root=" in str(exc)
        run = RunConfig.from_config(cfg, check_data=False)
    cpu = {"accelerator": "cpu", "devices": 1, "strategy": "auto", "num_nodes": 1}
    with_cpu = OmegaConf.create({**OmegaConf.to_container(cfg.trainer, resolve=True), **cpu})
    assert build_datamodule(cfg, run) is not None
    model = instantiate(cfg.model, "model")
    assert model.hparams.backbone == cfg.model.backbone
    if str(cfg.model.weights) not in ("none", "offline"):  # the paper's ImageNet ResNet-50
        own = model.backbone.net.state_dict()
        files = {name: torch.load(f, weights_only=True) for name, f in imagenet_hub.items()}
        loaded = [
            n for n, state in files.items() if all(torch.equal(v, state[k]) for k, v in own.items())
        ]
        assert len(loaded) == 1, loaded
    callbacks = instantiate_mapping(cfg.get("callbacks"), "callbacks")
    loggers = build_loggers(cfg)
    trainer = instantiate(with_cpu, "trainer", callbacks=callbacks, logger=loggers or False)
    assert trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        (
            "model.backbone=resnet18",
            r"model\.backbone='resnet18' is unknown; allowed values: .*tiny_cnn",
        ),
        ("reshape.T_f=0", r"reshape\.T_f=0.* allowed: 0 < T_f <= 2"),
        ("reshape.T_f=2.5", r"reshape\.T_f=2\.5.* allowed: 0 < T_f <= 2"),
        ("reshape.T_q=0", r"reshape\.T_q=0.* allowed: T_q > 0"),
        ("reshape.T_u=0", r"reshape\.T_u=0.* allowed: an integer >= 1"),
        ("reshape.T_u=2.5", r"reshape\.T_u=2\.5.* allowed: an integer >= 1"),
        ("reshape.k=0", r"reshape\.k=0.* allowed: an integer >= 1 or 'all'"),
        ("reshape.k=some", r"reshape\.k='some'.* allowed"),
        ("reshape.T_ref=-0.1", r"reshape\.T_ref=-0\.1.* allowed: T_ref >= 0"),
        (
            "reshape.rule=median",
            r"reshape\.rule='median' is unknown; allowed values: reference, paper",
        ),
        ("++data.feature_pass.batch_size=0", r"data\.feature_pass\.batch_size=0"),
        # explicit validation-based selection without a validation set (selection=auto,
        # the default, falls back to the last epoch instead)
        ("selection=val data.val_fraction=0", r"no validation set"),
    ],
)
def test_bad_config_names_key_and_allowed_values(
    override: str, pattern: str, tmp_path: Path
) -> None:
    cfg = compose_config([*override.split(" "), *_paths(tmp_path)], output_dir=tmp_path)
    with pytest.raises(ConfigError, match=pattern):
        validate_config(cfg)


def test_k_all_is_accepted(tmp_path: Path) -> None:
    validate_config(compose_config(["reshape.k=all", *_paths(tmp_path)], output_dir=tmp_path))


def test_reshape_group_reaches_a_datamodule_that_accepts_it(tmp_path: Path) -> None:
    cfg = compose_config(
        [
            "data._target_=syndr_lightning.data.syndr.SynDRDataModule",
            "reshape=none",
            "reshape.T_u=7",
            *_paths(tmp_path),
        ],
        output_dir=tmp_path,
    )
    dm = build_datamodule(cfg, RunConfig.from_config(cfg, check_data=False))
    reshape = dm.reshape  # type: ignore[attr-defined]
    assert reshape.drcdown_params.T_u == 7 and reshape.drcdown is False
    plain_cfg = compose_config(["data=kadid10k", "reshape=none", *_paths(tmp_path)], tmp_path)
    plain = build_datamodule(plain_cfg, RunConfig.from_config(plain_cfg, check_data=False))
    assert not hasattr(plain, "reshape")  # IQADataModule takes no reshape argument


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_pair_search_backend_passes_validation(backend: str, tmp_path: Path) -> None:
    cfg = compose_config([f"reshape.backend={backend}", *_paths(tmp_path)], output_dir=tmp_path)
    validate_config(cfg)
    assert cfg.reshape.backend == backend


BAD_VALUES = [
    ("reshape.backend=numpy", r"^reshape\.backend='numpy' is unknown; allowed values: "),
    ("+data.candidate_pool.size=-3", r"^data\.candidate_pool\.size=-3 is not allowed; use refset"),
    ("reshape.encoder=resnet5O", r"^reshape\.encoder='resnet5O' is unknown; allowed values: "),
    ("+data.ddcup_reference_set=every", r"^data\.ddcup_reference_set='every' is unknown"),
    ("+data.label_scaling=paper", r"^data\.label_scaling='paper' is unknown; allowed values"),
]


@pytest.mark.parametrize(("override", "pattern"), BAD_VALUES)
def test_bad_value_fails_before_anything_is_built(
    override: str, pattern: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train()`` from Python refuses the value with a one-line ConfigError naming the
    key before any Trainer, logger, datamodule, cache or run file exists."""
    from syndr_lightning import train as task

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"something was built although {override} is invalid")

    for name in ("build_datamodule", "build_loggers", "build_callbacks", "instantiate"):
        monkeypatch.setattr(task, name, no_build)
    out = tmp_path / "run"
    cfg = compose_config([override, *_paths(tmp_path)], output_dir=out)
    with pytest.raises(ConfigError, match=pattern) as info:
        task.train(cfg)
    assert "\n" not in str(info.value)
    assert list(out.iterdir()) == []  # no run files: nothing was built
    assert not (tmp_path / "cache").exists()  # no data generated


def test_reshape_config_comment_lists_the_allowed_backends() -> None:
    """The comment of reshape.backend in conf/reshape/syndr.yaml names exactly BACKENDS."""
    line = next(
        ln
        for ln in (conf_dir() / "reshape" / "syndr.yaml").read_text().splitlines()
        if ln.startswith("backend:")
    )
    listed = line.split("#", 1)[1].split(":", 1)[1]
    assert [b.strip() for b in listed.split("|")] == list(BACKENDS)


def test_every_experiment_config_composes_to_the_golden_values() -> None:
    """The resolved values of the default and every ``conf/experiment/**`` config equal
    ``tests/data/config_snapshot.json`` (written by experiments/config_snapshot.py at a
    known-good commit): restructuring the config code must not change any value."""
    import importlib.util
    import json

    path = REPO_ROOT / "experiments" / "config_snapshot.py"
    spec = importlib.util.spec_from_file_location("config_snapshot", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    golden = json.loads(module.GOLDEN.read_text())
    current = json.loads(json.dumps(module.snapshot(), sort_keys=True, default=str))
    assert sorted(current) == sorted(golden)
    for name in golden:
        assert current[name] == golden[name], name


def test_package_layers_hold() -> None:
    """One module is named ``protocol.py``, and ``data/syndr.py`` stays the Lightning
    adapter (< 250 lines, no ``getattr`` look-ups between the datamodule and the report).
    Which package may import which: tests/test_layers.py."""
    pkg = REPO_ROOT / "syndr_lightning"
    assert [p.relative_to(pkg).as_posix() for p in pkg.rglob("protocol.py")] == ["protocol.py"]
    syndr = (pkg / "data" / "syndr.py").read_text()
    assert len(syndr.splitlines()) < 250 and "getattr(" not in syndr
    assert "getattr(" not in (pkg / "protocol.py").read_text()
