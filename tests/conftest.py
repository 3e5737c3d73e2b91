"""Shared fixtures: tiny generated IQA datasets; one torch thread per (xdist) worker."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Two cores are shared by the xdist workers: one intra-op thread each, and never reach out
# to model hubs from tests.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")


@pytest.fixture(autouse=True)
def _logging_state() -> Iterator[None]:
    """Each test starts from the logging setup the previous one found: an in-process Hydra
    run adds root handlers bound to that test's captured stderr, and ``logs.route_lightning``
    sends Lightning's records to them; left behind, a later test's Lightning line would hit
    a closed stream ("--- Logging error ---" on stderr)."""
    root = logging.getLogger()
    before = list(root.handlers)
    names = ("lightning", "lightning.pytorch", "lightning.fabric")
    saved = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in names
    }
    yield
    for handler in list(root.handlers):  # pytest's own capture handlers come and go itself
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
    for name, (handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate


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


@pytest.fixture(scope="session")
def _imagenet_hub(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A torch hub cache holding stand-ins for torchvision's ResNet-50 ImageNet weights.

    Randomly initialised state dicts (a different seed per weights version) saved under
    the file names torchvision downloads to. torch.hub verifies the SHA-256 prefix in the
    file name only while downloading, never for a file already in the cache, so these load
    exactly as the published weights would, through the same code path.
    """
    import torchvision.models as tvm

    home = tmp_path_factory.mktemp("torch_home")
    files = {}
    for seed, name in enumerate(("IMAGENET1K_V1", "IMAGENET1K_V2"), start=1):
        url = tvm.ResNet50_Weights[name].url
        path = home / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        torch.save(tvm.resnet50(weights=None).state_dict(), path)
        files[name] = path
    return {"TORCH_HOME": home, **files}


@pytest.fixture()
def imagenet_hub(_imagenet_hub: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict:
    """TORCH_HOME set to the stand-in cache; maps each weights name to its file."""
    monkeypatch.setenv("TORCH_HOME", str(_imagenet_hub["TORCH_HOME"]))
    return {k: v for k, v in _imagenet_hub.items() if k != "TORCH_HOME"}
