"""The training task end to end on generated images (CPU, tiny CNN)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra

from syndr_lightning.train import compose_config, train

TINY = [
    "task_name=demo",
    "model=tiny",
    "data=generated",  # the plain IQADataModule on generated data
    "reshape=none",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "data.batch_size=8",
    "data.crop_size=32",
    "data.eval_crops=2",
    "data.train.options.n_refs=5",
    "data.train.options.n_types=3",
    "data.train.options.n_levels=3",
    "data.train.options.size=[40,48]",
    "data.test.0.options.n=10",
    "data.test.0.options.size=[40,48]",
    "data.test.1.options.n_refs=2",
    "data.test.1.options.size=[40,48]",
    "callbacks.rich_progress_bar=null",
]


def _run(tmp_path: Path, *extra: str) -> dict[str, float]:
    GlobalHydra.instance().clear()
    out = tmp_path / "run"
    paths = [f"paths.cache_dir={tmp_path / 'cache'}", f"paths.log_dir={tmp_path / 'logs'}"]
    cfg = compose_config([*TINY, *paths, *extra], output_dir=out)
    return train(cfg)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    tmp = tmp_path_factory.mktemp("train")
    return tmp / "run", _run(tmp)


def test_fit_validate_test_metrics(run: tuple[Path, dict[str, float]]) -> None:
    _, metrics = run
    for prefix in ("val", "val_last"):
        for m in ("srcc", "plcc", "krcc", "plcc_logistic"):
            assert -1.0 <= metrics[f"{prefix}/{m}"] <= 1.0
    for name in ("authentic_like", "synthetic_unseen"):
        for prefix in ("test", "test_last"):
            for m in ("srcc", "plcc", "krcc", "plcc_logistic"):
                assert -1.0 <= metrics[f"{prefix}/{name}/{m}"] <= 1.0
    assert metrics["val/epoch"] in (0.0, 1.0)
    assert metrics["train/loss_epoch"] > 0
    assert not any(k.startswith("test_best_on_test") for k in metrics)


def test_run_folder_has_provenance_and_checkpoints(run: tuple[Path, dict[str, float]]) -> None:
    out, metrics = run
    resolved = yaml.safe_load((out / "config_resolved.yaml").read_text())
    assert resolved["model"]["backbone"] == "tiny_cnn"
    assert "${" not in (out / "config_resolved.yaml").read_text()
    info = json.loads((out / "run_info.json").read_text())
    assert info["seed"] == 0 and info["git_sha"] and info["versions"]["torch"]
    saved = json.loads((out / "metrics.json").read_text())["metrics"]
    assert saved["val/srcc"] == pytest.approx(metrics["val/srcc"])
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert len(list((out / "checkpoints").glob("epoch_*.ckpt"))) == 1
    assert (out / "csv" / "metrics.csv").is_file()


def test_last_checkpoint_holds_the_last_epoch(tmp_path: Path) -> None:
    """last.ckpt is the final epoch even when the val-selected checkpoint is an earlier one.

    With lr=1e-30 (updates vanish in float32) every epoch validates the same, so the selected checkpoint stays epoch 0
    (ties do not replace it) while last.ckpt must move on to epoch 2.
    """
    import torch

    metrics = _run(tmp_path, "model.lr=1e-30", "trainer.max_epochs=3", "data.test=[]")
    ckpts = tmp_path / "run" / "checkpoints"
    assert [p.name for p in ckpts.glob("epoch_*.ckpt")] == ["epoch_000.ckpt"]
    assert metrics["val/epoch"] == 0.0
    last = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2


def test_checkpoint_selected_by_val_srcc_reproduces_val_metrics(
    run: tuple[Path, dict[str, float]],
) -> None:
    """The val/* metrics returned are those of the selected checkpoint, recomputed offline."""
    import torch

    from syndr_lightning.data.datamodule import IQADataModule
    from syndr_lightning.metrics import iqa_metrics
    from syndr_lightning.models.module import BIQAModule

    out, metrics = run
    ckpt = next((out / "checkpoints").glob("epoch_*.ckpt"))
    model = BIQAModule.load_from_checkpoint(ckpt).eval()
    resolved = yaml.safe_load((out / "config_resolved.yaml").read_text())["data"]
    resolved.pop("_target_")
    dm = IQADataModule(**resolved)
    dm.setup("validate")
    preds, targets = [], []
    with torch.no_grad():
        for batch in dm.val_dataloader():
            preds.append(model.predict_crops(batch["image"]))
            targets.append(batch["score"])
    values = iqa_metrics(torch.cat(preds).numpy(), torch.cat(targets).numpy())
    assert values["srcc"] == pytest.approx(metrics["val/srcc"], abs=1e-5)
    assert values["plcc"] == pytest.approx(metrics["val/plcc"], abs=1e-5)


def test_seeded_runs_repeat_and_select_on_test_is_labelled(
    run: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    _, first = run
    again = _run(tmp_path, "select_on_test=true")
    for key in ("val/srcc", "val_last/plcc", "test/authentic_like/srcc", "train/loss_epoch"):
        assert again[key] == pytest.approx(first[key], abs=1e-6), key
    for name in ("authentic_like", "synthetic_unseen"):
        best = again[f"test_best_on_test/{name}/srcc"]
        # The best epoch on the test set is at least as good as the last epoch there.
        assert best >= again[f"test_last/{name}/srcc"] - 1e-6
        assert again[f"test_best_on_test/{name}/epoch"] in (0.0, 1.0)


def test_fast_dev_run_tests_final_weights(tmp_path: Path) -> None:
    metrics = _run(tmp_path, "debug=fdr", "~logger")
    assert "test/authentic_like/srcc" in metrics  # no checkpoint: the final weights
    assert "test_last/authentic_like/srcc" not in metrics
    assert not list((tmp_path / "run").rglob("epoch_*.ckpt"))  # nothing was selected


def test_many_loggers_and_wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    _run(tmp_path, "logger=many", "trainer.max_epochs=1", "test=false")
    out = tmp_path / "run"
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert (out / "csv" / "metrics.csv").is_file()
    assert list((out / "wandb").glob("offline-run-*"))
    assert wandb.run is None  # finished in the task's `finally`
