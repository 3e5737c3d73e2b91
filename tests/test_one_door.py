"""One door per value: every setting enters once (``RunConfig``'s typed objects), is
checked before anything is written, and the record equals the run (issue 31)."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from syndr_lightning import train as train_module
from syndr_lightning.build import build_datamodule, build_model
from syndr_lightning.compose import compose_config
from syndr_lightning.config import conf_dir
from syndr_lightning.models.module import BIQAModule
from syndr_lightning.models.params import ModelParams
from syndr_lightning.protocol import PROTOCOL_KEYS, Protocol
from syndr_lightning.reshape.params import ReshapeParams
from syndr_lightning.run_config import RunConfig
from syndr_lightning.utils.errors import ConfigError

EXPERIMENTS = [
    "",
    *sorted(
        str(p.relative_to(conf_dir() / "experiment").with_suffix(""))
        for p in (conf_dir() / "experiment").rglob("*.yaml")
    ),
]

#: Override routes a user may try; each must be refused in one line by RunConfig or
#: reach the algorithms exactly as the record states it.
ROUTES = [
    ["reshape.T_f=0.05", "reshape.ddcup=false"],
    ["+data.reshape.T_f=0.05", "+data.reshape.ddcup=false"],  # the second door (refused)
    ["+data.reshape.T_f=7"],
    ["+data.protocol.label_scaling=authors"],
    ["reshape.T_q=2.5", "reshape.k=3", "reshape.rule=paper", "++data.label_scaling=authors"],
    ["+experiment=syn2auth", "reshape.T_u=7", "reshape.drcdown=false"],
    ["reshape=none"],
]

#: Run-level values that must be refused before the run folder gets a file.
HOSTILE = [
    ["+data.reshape.T_f=0.05", "+data.reshape.ddcup=false"],
    ["+data.reshape.T_f=7"],
    ["model.lr=-1"],
    ["model.weight_decay=-1"],
    ["model.loss=huber"],
    ["model.lr_ratio=0"],
    ["+model.learning_rate=1e-3"],
    ["data.batch_size=0"],
    ["data.num_workers=-1"],
    ["trainer.max_epochs=-5"],
    ["+trainer.accumulate_grad_batches=0"],
    ["+data.batchsize=8"],
]


@pytest.fixture(autouse=True)
def _clean_hydra() -> None:
    GlobalHydra.instance().clear()


def _compose(overrides: list[str], tmp_path: Path):
    GlobalHydra.instance().clear()
    return compose_config([*overrides, f"paths.cache_dir={tmp_path / 'cache'}"], tmp_path / "run")


@pytest.mark.parametrize("overrides", HOSTILE, ids=" ".join)
def test_bad_values_are_refused_before_the_run_folder_gets_a_file(
    overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _compose(overrides, tmp_path)

    def built(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{overrides} reached the builders")

    monkeypatch.setattr(train_module, "build_datamodule", built)
    with pytest.raises(ConfigError) as err:
        train_module.train(cfg)
    assert "\n" not in str(err.value)
    assert list((tmp_path / "run").iterdir()) == []  # no config_resolved.yaml, run_info.json


def _received(dm: object) -> dict[str, object]:
    """What the algorithms receive: the data module's ReshapeParams, flattened."""
    reshape = dm.reshape  # type: ignore[attr-defined]
    assert isinstance(reshape, ReshapeParams)
    return reshape.flat()


@pytest.mark.parametrize(
    "overrides",
    [[f"+experiment={e}"] if e else [] for e in EXPERIMENTS] + ROUTES,
    ids=lambda o: " ".join(o) or "<default>",
)
def test_the_record_is_the_run(overrides: list[str], tmp_path: Path) -> None:
    """Every experiment and every override route: the values DDCUp/DRCDown and the data
    protocol receive equal ``syndr_protocol.json`` and the protocol line, and equal the
    composed config's ``reshape`` group (the only door)."""
    cfg = _compose(overrides, tmp_path)
    try:
        run = RunConfig.from_config(cfg, check_data=False)
    except ConfigError as exc:  # refused in one line naming the key
        assert any(o.startswith("+data.") for o in overrides), exc
        assert "\n" not in str(exc) and "data." in str(exc)
        return
    dm = build_datamodule(cfg, run)
    protocol = Protocol.from_facts(dm.facts(), run.reshape, run.seed, run.facts)
    record, line = protocol.to_json(), protocol.line()
    received = _received(dm)
    composed = ReshapeParams.from_config(OmegaConf.to_container(cfg.reshape)).flat()
    assert received == composed
    for key in ("ddcup", "drcdown", *PROTOCOL_KEYS):
        assert record[key] == received[key], key
    down, up = dm.reshape.drcdown_params, dm.reshape.ddcup_params
    assert dm.reshape.drcdown == (f"T_f={down.T_f}, T_q={down.T_q}, T_u={down.T_u}" in line)
    assert dm.reshape.ddcup == (f"k={up.k}, T_ref={up.T_ref}" in line)
    assert dm.protocol == run.data_protocol
    assert record["label_scaling"] == dm.protocol.label_scaling
    if run.feature_pass is not None:
        assert dm.feature_pass.batch_size == run.feature_pass.batch_size


def test_model_values_reach_the_module_by_one_route(tmp_path: Path) -> None:
    cfg = _compose(["model=tiny", "model.lr=3e-4", "model.weight_decay=0"], tmp_path)
    run = RunConfig.from_config(cfg, check_data=False)
    model = build_model(cfg, run)
    assert isinstance(model, BIQAModule) and model.model_params is run.model
    assert (run.model.lr, run.model.weight_decay) == (3e-4, 0.0)
    groups = model.configure_optimizers().param_groups
    assert [g["lr"] for g in groups] == [3e-4, 3e-4 * run.model.lr_ratio]
    assert {g["weight_decay"] for g in groups} == {0.0}
    assert dict(model.hparams) == asdict(run.model)  # what a checkpoint records


def test_model_defaults_live_in_model_params_and_the_yaml_says_the_same() -> None:
    """The only Python defaults of ``model.*`` are ModelParams'; conf/model/biqa.yaml
    writes the same values (the paper's model) for the record."""
    import inspect

    params = inspect.signature(BIQAModule.__init__).parameters
    assert all(p.default is inspect.Parameter.empty or p.default is None for p in params.values())
    yaml_values = yaml.safe_load((conf_dir() / "model" / "biqa.yaml").read_text())
    for f in fields(ModelParams):
        if f.name in yaml_values:
            assert yaml_values[f.name] == f.default, f.name
