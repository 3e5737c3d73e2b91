"""Shared fixtures: tiny generated IQA datasets; one torch thread per (xdist) worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores are shared by the xdist workers: one intra-op thread each, and never reach out
# to model hubs from tests.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")


@pytest.fixture(scope="session")
def _synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from syndr_lightning.fakedata.synthetic import generate_synthetic_iqa

    return generate_synthetic_iqa(tmp_path_factory.mktemp("synthetic"), seed=0)


@pytest.fixture(scope="session")
def _authentic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from syndr_lightning.fakedata.synthetic import generate_authentic_like

    return generate_authentic_like(tmp_path_factory.mktemp("authentic"), n=12, seed=100)


@pytest.fixture()
def synthetic_csv(_synthetic_root: Path) -> Path:
    """CSV (path,score,ref,type,level) of 6 refs x 3 types x 3 levels, 48x64 PNGs.

    Session-scoped files: do not modify them (generate your own under tmp_path instead).
    """
    return _synthetic_root


@pytest.fixture()
def authentic_csv(_authentic_root: Path) -> Path:
    """CSV (path,score) of 12 authentic-like 48x64 PNGs. Read-only, like synthetic_csv."""
    return _authentic_root
