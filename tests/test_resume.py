"""Exact resume, checkpoint identity, divergence and run_status.json (issue 29).

A tiny SynDR run (DRCDown on, tiny_cnn, 2 epochs) is interrupted by a real SIGTERM at
four points (mid-epoch, mid-validation, right after the DRCDown pass of an epoch, and
resumed from the epoch boundary's last.ckpt); each resumed run must end with a
metrics.json identical to the uninterrupted run's, in the checkpoint's own run folder.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

TINY = [
    "task_name=resume",
    "model=tiny",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "reshape.ddcup=false",
    "reshape.T_u=2",
    "reshape.T_q=10",
    "reshape.T_f=0.05",
    "data.num_workers=0",
    "data.batch_size=4",
    "data.crop_size=32",
    "data.eval_crops=1",
    "data.train.options.n_refs=4",
    "data.train.options.n_types=2",
    "data.train.options.n_levels=2",
    "data.train.options.size=[40,48]",
    "data.test.0.options.n=6",
    "data.test.0.options.size=[40,48]",
    "data.test.1.options.n_refs=2",
    "data.test.1.options.size=[40,48]",
    "callbacks.rich_progress_bar=null",
    "callbacks.dashboard=null",
    "logger=csv",
    "check_images=false",
]


@pytest.fixture(autouse=True)
def _no_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SLURM_"):
            monkeypatch.delenv(key)


def _run(tmp: Path, folder: str, *extra: str) -> int:
    """One training in this process; its exit status (0 when it returned)."""
    from syndr_lightning.__main__ import run_task
    from syndr_lightning.train import compose_config

    GlobalHydra.instance().clear()
    paths = [f"paths.cache_dir={tmp / 'cache'}", f"paths.log_dir={tmp / 'logs'}"]
    cfg = compose_config([*TINY, *paths, *extra], output_dir=tmp / folder)
    try:
        run_task(cfg)
    except SystemExit as stop:
        return int(stop.code or 0)
    finally:
        GlobalHydra.instance().clear()
    return 0


def _stop(tmp: Path, where: str, epoch: int, batch: int = 0) -> list[str]:
    return [
        "+callbacks.stop._target_=preempt_helpers.StopAt",
        f"+callbacks.stop.where={where}",
        f"+callbacks.stop.epoch={epoch}",
        f"+callbacks.stop.batch={batch}",
        f"+callbacks.stop.marker={tmp / ('stopped-' + where)}",
    ]


def _metrics(folder: Path) -> dict[str, float]:
    return json.loads((folder / "metrics.json").read_text())["metrics"]


def _status(folder: Path) -> dict[str, object]:
    return json.loads((folder / "run_status.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    tmp = tmp_path_factory.mktemp("resume")
    assert _run(tmp, "full") == 0
    return tmp, _metrics(tmp / "full")


@pytest.mark.parametrize(
    ("where", "epoch", "batch", "ckpt"),
    [
        ("train_batch", 0, 2, "preempted.ckpt"),  # mid-epoch
        ("val_batch", 0, 1, "preempted.ckpt"),  # mid-validation
        ("epoch_start", 1, 0, "preempted.ckpt"),  # right after epoch 1's DRCDown pass
        ("train_batch", 1, 1, "last.ckpt"),  # the epoch boundary (end of epoch 0)
    ],
)
def test_a_resumed_run_ends_exactly_like_the_uninterrupted_one(
    uninterrupted: tuple[Path, dict[str, float]], where: str, epoch: int, batch: int, ckpt: str
) -> None:
    tmp, expected = uninterrupted
    name = f"{where}-{epoch}-{ckpt}"
    assert _run(tmp, name, *_stop(tmp / name, where, epoch, batch)) == 143
    first = tmp / name
    assert _status(first)["status"] == "preempted" and _status(first)["exit_code"] == 143
    resume = f"ckpt_path={first / 'checkpoints' / ckpt}"
    assert _run(tmp, name + "-again", resume) == 0
    # the run continued in the checkpoint's folder; the new one points there
    assert (tmp / (name + "-again") / "resumed_in.txt").read_text().strip() == str(first)
    assert not (tmp / (name + "-again") / "metrics.json").exists()
    assert _metrics(first) == expected  # bit for bit, every metric
    status = _status(first)
    assert status["status"] == "finished" and status["exit_code"] == 0 and status["epoch"] == 2
    # one curve file with every epoch's loss and DRCDown statistics (first resumed one too)
    with open(first / "csv" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    kept = {int(float(r["epoch"])) for r in rows if r.get("drcdown/kept")}
    losses = [int(float(r["epoch"])) for r in rows if r.get("train/loss_epoch")]
    assert kept == {0, 1} and losses == [0, 1]
    with np.load(first / "drcdown_subsets.npz") as subsets:
        assert sorted(subsets.files) == ["epoch_0", "epoch_1"]
    history = json.loads((first / "drcdown_history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]


def test_a_checkpoint_of_another_run_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syndr_lightning.run_identity import IDENTITY_KEY, run_identity
    from syndr_lightning.train import compose_config

    GlobalHydra.instance().clear()
    other = compose_config([*TINY, "data.train.options.n_refs=5"], output_dir=tmp_path / "x")
    ckpt = tmp_path / "other.ckpt"
    torch.save({IDENTITY_KEY: run_identity(other), "state_dict": {}, "global_step": 3}, ckpt)
    code = _run(tmp_path, "run", f"ckpt_path={ckpt}")
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ckpt_path="), err
    assert "belongs to another run: data.train differs" in err[0]
    assert "'n_refs': 5" in err[0] and "'n_refs': 4" in err[0]
    assert not list((tmp_path / "run").glob("checkpoints/*"))  # nothing trained


def test_an_exploding_loss_ends_the_run_as_diverged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syndr_lightning.utils.errors import EXIT_DIVERGED

    code = _run(tmp_path, "run", "model.lr=1e3", "reshape.drcdown=false")
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert code == EXIT_DIVERGED == 3
    assert len(err) == 1 and "training diverged" in err[0] and "model.max_loss=1000" in err[0]
    status = _status(tmp_path / "run")
    assert status["status"] == "diverged" and status["exit_code"] == 3
    assert "training diverged" in str(status["reason"])
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_max_loss_must_be_positive() -> None:
    from syndr_lightning.models.module import BIQAModule
    from syndr_lightning.utils.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model\.max_loss=0 is out of range"):
        BIQAModule(backbone="tiny_cnn", weights=None, max_loss=0)


def test_a_loader_resumes_at_its_batch_with_the_same_samples() -> None:
    from syndr_lightning.data.sampler import EpochSampler, ResumableLoader, SeededSubset

    class Noisy(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 10

        def __getitem__(self, i: int) -> torch.Tensor:
            return torch.tensor([float(i), float(torch.rand(1))])  # a random "crop"

    def loader(done: int) -> ResumableLoader:
        rows = list(range(10))
        return ResumableLoader(
            SeededSubset(Noisy(), rows, seed=3, epoch=2),
            batch_size=3,
            sampler=EpochSampler(10, 3, 2),
            epoch=2,
            trained=lambda: done,
        )

    full = [b for b in loader(0)]
    resumed = loader(0)
    resumed.load_state_dict({**loader(2).state_dict(), "rng": None})
    assert len(resumed) == 4  # the epoch's length, skipped batches included
    rest = list(resumed)
    assert len(rest) == 2 and all(torch.equal(a, b) for a, b in zip(full[2:], rest, strict=True))
    other = loader(0)
    other.load_state_dict({"epoch": 1, "batches": 2})  # another epoch's state: no skip
    assert len(list(other)) == 4


def test_run_status_names_the_divergence_behind_a_wrapper(tmp_path: Path) -> None:
    from syndr_lightning.run_status import write_run_status
    from syndr_lightning.utils.errors import ConfigError, DivergenceError

    class RunFailed(RuntimeError):  # what a campaign wraps a job's error in
        pass

    cause = DivergenceError("training diverged at epoch 2, step 17: ...")
    cause.run_progress = (2, 17)  # type: ignore[attr-defined]
    try:
        raise RunFailed("job 3: training diverged") from cause
    except RunFailed as wrapped:
        record = write_run_status(tmp_path, wrapped)
    assert record == {
        "status": "diverged",
        "exit_code": 3,
        "reason": "job 3: training diverged",
        "epoch": 2,
        "step": 17,
    }
    assert json.loads((tmp_path / "run_status.json").read_text()) == record
    assert write_run_status(tmp_path, ConfigError("bad key"))["exit_code"] == 2
    assert write_run_status(tmp_path)["status"] == "finished"
