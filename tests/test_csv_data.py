"""data=csv: own labelled data without ~ tricks; DDCUp's references from a ref_path column
or a refs_dir folder, and an error that says what is missing when there are none."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from syndr_lightning.build import build_datamodule
from syndr_lightning.compose import compose_config
from syndr_lightning.data.datasets import load_dataset
from syndr_lightning.data.datasets.generic import CSVDataset
from syndr_lightning.data.syndr_build import training_references
from syndr_lightning.fakedata.synthetic import generate_synthetic_iqa
from syndr_lightning.run_config import RunConfig
from syndr_lightning.utils.errors import ConfigError


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("csv")
    return generate_synthetic_iqa(out, n_refs=3, n_types=2, n_levels=2, size=(24, 32))


def test_references_from_refs_dir_or_ref_path_column(labelled: Path, tmp_path: Path) -> None:
    assert CSVDataset(labelled).references() == {}
    refs = CSVDataset(labelled, refs_dir=str(labelled.parent / "refs")).references()
    assert sorted(refs) == ["ref_000", "ref_001", "ref_002"]
    assert all(p.is_file() for p in refs.values())
    table = pd.read_csv(labelled)
    table["path"] = [str(labelled.parent / p) for p in table["path"]]
    table["ref_path"] = [str(labelled.parent / "refs" / f"{r}.png") for r in table["ref"]]
    other = tmp_path / "with_refs.csv"
    table.to_csv(other, index=False)
    assert CSVDataset(other).references() == refs
    assert len(load_dataset("csv", str(other))) == len(table)  # ref_path is not a label column


def _cfg(tmp_path: Path, labelled: Path, *extra: str):
    GlobalHydra.instance().clear()
    cfg = compose_config(
        ["data=csv", f"data.train.root={labelled}", f"paths.cache_dir={tmp_path / 'c'}",
         f"data.candidates.root={labelled.parent / 'refs'}", *extra],
        output_dir=tmp_path / "out",
    )  # fmt: skip
    OmegaConf.resolve(cfg)
    RunConfig.from_config(cfg)
    return cfg


def test_data_csv_composes_without_tricks(tmp_path: Path, labelled: Path) -> None:
    cfg = _cfg(tmp_path, labelled, "reshape.ddcup=false")
    assert cfg.data.train == {"name": "csv", "root": str(labelled), "options": {"refs_dir": None}}
    dm = build_datamodule(cfg, RunConfig.from_config(cfg))
    assert dm.reshape.drcdown and not dm.reshape.ddcup


def test_ddcup_without_references_says_what_is_missing(tmp_path: Path, labelled: Path) -> None:
    cfg = _cfg(tmp_path, labelled)
    dm = build_datamodule(cfg, RunConfig.from_config(cfg))
    with pytest.raises(ConfigError, match=r"ref_path.*refs_dir.*reshape\.ddcup=false"):
        training_references(dm.train_entry)
    ok = _cfg(tmp_path, labelled, f"data.train.options.refs_dir={labelled.parent / 'refs'}")
    assert (
        len(training_references(build_datamodule(ok, RunConfig.from_config(ok)).train_entry)) == 3
    )
