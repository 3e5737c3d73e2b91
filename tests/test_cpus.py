"""Thread and worker counts follow the CPUs the process may use (affinity, SLURM)."""

from __future__ import annotations

import os

import pytest
import torch

from syndr_lightning.utils import cpus
from syndr_lightning.utils.cpus import cap_workers, set_torch_threads, usable_cpus


@pytest.fixture()
def two_of_sixteen(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16-core machine of which this process may use CPUs 3 and 7."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 7}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)


@pytest.mark.usefixtures("two_of_sixteen")
def test_usable_cpus_follow_affinity_and_slurm() -> None:
    assert usable_cpus({}) == 2
    assert usable_cpus({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert usable_cpus({"SLURM_CPUS_PER_TASK": "8"}) == 2  # the mask is tighter
    assert usable_cpus({"SLURM_CPUS_PER_TASK": "garbage"}) == 2


@pytest.mark.usefixtures("two_of_sixteen")
def test_torch_threads_bounded_by_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(16)  # torch's own default: the machine's cores
        assert set_torch_threads(environ={}) == 2
        assert torch.get_num_threads() == 2
        torch.set_num_threads(16)
        assert set_torch_threads(environ={"SLURM_CPUS_PER_TASK": "1"}) == 1
        torch.set_num_threads(1)  # a smaller pool set on purpose is kept
        assert set_torch_threads(environ={}) == 1
        torch.set_num_threads(16)  # the user's OMP_NUM_THREADS wins
        assert set_torch_threads(environ={"OMP_NUM_THREADS": "16"}) == 16
    finally:
        torch.set_num_threads(before)


@pytest.mark.usefixtures("two_of_sixteen")
def test_loader_workers_capped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="syndr_lightning"):
        assert cap_workers(4, "data.num_workers") == 1
    assert "data.num_workers=4 lowered to 1" in caplog.text
    assert cap_workers(1, "data.num_workers") == 1
    assert cap_workers(0) == 0
    assert cap_workers(-1) == -1  # left to the datamodule's own check
    assert cap_workers(4, cpus=1) == 0


@pytest.mark.usefixtures("two_of_sixteen")
def test_auto_workers_follow_affinity() -> None:
    from syndr_lightning.distort.generator import default_workers
    from syndr_lightning.reshape.features import _auto_workers

    assert default_workers() == 2
    assert _auto_workers(10_000, 8) == 1


def test_build_datamodule_caps_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """data.num_workers=8 on a process allowed 2 CPUs trains with 1 loader worker."""
    from syndr_lightning.build import build_datamodule
    from syndr_lightning.compose import compose_config
    from syndr_lightning.run_config import RunConfig

    cfg = compose_config(["data.num_workers=8", "paths.cache_dir=/nonexistent-i33"])
    run = RunConfig.from_config(cfg)
    monkeypatch.setattr(cpus, "_affinity", lambda: 2)
    dm = build_datamodule(cfg, run)
    assert dm.num_workers == 1
    assert dm.feature_pass.num_workers == 1
