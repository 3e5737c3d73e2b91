"""The training task end to end on generated images (CPU, tiny CNN)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch.trainer.states import TrainerFn

from syndr_lightning.models.module import BIQAModule
from syndr_lightning.reshape.params import ReshapeParams
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


# While fitting, the module fixture's validation SRCC is scripted per epoch so that the
# selected epoch (0) is not the last one (1): a test of the last checkpoint instead of the
# val-selected one then shows in test/* (with real values the best epoch is also the last).
VAL_SRCC_SCRIPT = (0.9, 0.1)


@contextlib.contextmanager
def scripted_val_srcc(script: tuple[float, ...]) -> Iterator[None]:
    """Log ``script[epoch]`` as ``val/srcc`` during fit; real values everywhere else."""
    original = BIQAModule.on_validation_epoch_end

    def scripted(self: BIQAModule) -> None:
        if self.trainer.state.fn != TrainerFn.FITTING or self.val_metrics.update_count == 0:
            original(self)
            return
        values = self.val_metrics.compute()
        values["srcc"] = torch.tensor(script[self.current_epoch])
        for k, v in values.items():
            self.log(f"val/{k}", v.float(), sync_dist=True)
        self.val_metrics.reset()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BIQAModule, "on_validation_epoch_end", scripted)
        yield


def _run(tmp_path: Path, *extra: str, script: tuple[float, ...] | None = None) -> dict[str, float]:
    GlobalHydra.instance().clear()
    out = tmp_path / "run"
    paths = [f"paths.cache_dir={tmp_path / 'cache'}", f"paths.log_dir={tmp_path / 'logs'}"]
    cfg = compose_config([*TINY, *paths, *extra], output_dir=out)
    if script is None:
        return train(cfg)
    with scripted_val_srcc(script):
        return train(cfg)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    tmp = tmp_path_factory.mktemp("train")
    return tmp / "run", _run(tmp, script=VAL_SRCC_SCRIPT)


def _evaluate_checkpoint(ckpt: Path, out: Path) -> dict[str, dict[str, float]]:
    """Every test set's metrics of ``ckpt``, computed here from the run's resolved config."""
    from syndr_lightning.data.datamodule import IQADataModule
    from syndr_lightning.metrics import iqa_metrics

    model = BIQAModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    resolved = yaml.safe_load((out / "config_resolved.yaml").read_text())["data"]
    resolved.pop("_target_")
    dm = IQADataModule(**resolved)
    dm.setup("test")
    results = {}
    with torch.no_grad():
        for name, loader in zip(dm.test_names, dm.test_dataloader(), strict=True):
            preds, targets = [], []
            for batch in loader:
                preds.append(model.predict_crops(batch["image"]))
                targets.append(batch["score"])
            results[name] = iqa_metrics(torch.cat(preds).numpy(), torch.cat(targets).numpy())
    return results


def test_fit_validate_test_metrics(run: tuple[Path, dict[str, float]]) -> None:
    _, metrics = run
    for prefix in ("val", "val_last"):
        for m in ("srcc", "plcc", "krcc", "plcc_logistic"):
            assert -1.0 <= metrics[f"{prefix}/{m}"] <= 1.0
    for name in ("authentic_like", "synthetic_unseen"):
        for prefix in ("test", "test_last"):
            for m in ("srcc", "plcc", "krcc", "plcc_logistic"):
                assert -1.0 <= metrics[f"{prefix}/{name}/{m}"] <= 1.0
    assert metrics["val/epoch"] == 0.0  # the scripted best epoch, not the last
    assert metrics["val_last/srcc"] == pytest.approx(VAL_SRCC_SCRIPT[-1])
    assert metrics["train/loss_epoch"] > 0
    assert not any(k.startswith("test_best_on_test") for k in metrics)


def test_test_metrics_are_those_of_the_val_selected_checkpoint(
    run: tuple[Path, dict[str, float]],
) -> None:
    """test/* evaluates the val-selected checkpoint (epoch 0), test_last/* the last one.

    Both are recomputed here from the checkpoint files, so testing the last checkpoint
    under the test/* names (or the final weights) fails this test.
    """
    out, metrics = run
    ckpts = out / "checkpoints"
    assert [p.name for p in ckpts.glob("epoch_*.ckpt")] == ["epoch_000.ckpt"]
    assert torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)["epoch"] == 1
    best = _evaluate_checkpoint(ckpts / "epoch_000.ckpt", out)
    last = _evaluate_checkpoint(ckpts / "last.ckpt", out)
    assert set(best) == {"authentic_like", "synthetic_unseen"}
    for name in best:
        for m in ("srcc", "plcc", "krcc", "plcc_logistic"):
            assert metrics[f"test/{name}/{m}"] == pytest.approx(best[name][m], abs=1e-5), m
            assert metrics[f"test_last/{name}/{m}"] == pytest.approx(last[name][m], abs=1e-5), m
    # The two checkpoints really score differently, so the check above can tell them apart.
    gaps = [abs(best[n]["plcc"] - last[n]["plcc"]) for n in best]
    assert max(gaps) > 1e-3, gaps


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

    The validation SRCC is scripted to fall (BatchNorm statistics move even without
    weight updates, so real values may rise), so the selected checkpoint stays epoch 0
    while last.ckpt must move on to epoch 2.
    """
    metrics = _run(
        tmp_path, "model.lr=1e-30", "trainer.max_epochs=3", "data.test=[]", script=(0.9, 0.5, 0.1)
    )
    ckpts = tmp_path / "run" / "checkpoints"
    assert [p.name for p in ckpts.glob("epoch_*.ckpt")] == ["epoch_000.ckpt"]
    assert metrics["val/epoch"] == 0.0
    last = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2


def test_checkpoint_selected_by_val_srcc_reproduces_val_metrics(
    run: tuple[Path, dict[str, float]],
) -> None:
    """The val/* metrics returned are those of the selected checkpoint, recomputed offline."""
    from syndr_lightning.data.datamodule import IQADataModule
    from syndr_lightning.metrics import iqa_metrics

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
    again = _run(tmp_path, "select_on_test=true", script=VAL_SRCC_SCRIPT)
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
    metrics = _run(tmp_path, "logger=many", "trainer.max_epochs=1", "test=false")
    assert "val/srcc" in metrics and not any(k.startswith("test") for k in metrics)
    out = tmp_path / "run"
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert (out / "csv" / "metrics.csv").is_file()
    assert list((out / "wandb").glob("offline-run-*"))
    assert wandb.run is None  # finished in the task's `finally`


SYNDR = [
    "data._target_=syndr_lightning.data.syndr.SynDRDataModule",
    "reshape.drcdown=true",
    "reshape.T_f=0.5",
    "reshape.T_q=10",
    "reshape.T_u=2",
    "+callbacks.drcdown={_target_: syndr_lightning.callbacks.drcdown.DRCDownCallback}",
]


RESUME_VAL_SRCC = (0.9, 0.1, 0.2)  # the selected epoch (0) lies before the interruption


@pytest.fixture(scope="module")
def resume_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 3-epoch DRCDown run, and the same run stopped after 2 epochs then resumed through
    the task's ``ckpt_path`` key (it continues in the checkpoint's run folder)."""
    tmp = tmp_path_factory.mktemp("resume")
    runs: dict[str, Any] = {}
    runs["full"] = _run(tmp / "full", "trainer.max_epochs=3", *SYNDR, script=RESUME_VAL_SRCC)
    _run(tmp / "first", "trainer.max_epochs=2", *SYNDR, script=RESUME_VAL_SRCC)
    ckpt = tmp / "first" / "run" / "checkpoints" / "last.ckpt"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "400")  # one line per table row and caption
        runs["resumed"] = _run(
            tmp / "resumed",
            "trainer.max_epochs=3",
            f"ckpt_path={ckpt}",
            *SYNDR,
            script=RESUME_VAL_SRCC,
        )
    runs["printed"] = " ".join(printed.getvalue().split())
    runs["dirs"] = {"full": tmp / "full" / "run", "resumed": tmp / "first" / "run"}
    assert (tmp / "resumed" / "run" / "resumed_in.txt").is_file()
    return runs


def test_resume_through_ckpt_path_repeats_an_uninterrupted_run(resume_runs: dict) -> None:
    """Same DRCDown subsets every epoch and the same last-epoch metrics as without a stop."""
    import numpy as np

    full, resumed, dirs = resume_runs["full"], resume_runs["resumed"], resume_runs["dirs"]
    history = {n: json.loads((d / "drcdown_history.json").read_text()) for n, d in dirs.items()}
    assert [h["epoch"] for h in history["resumed"]] == [0, 1, 2]  # restored from the ckpt
    assert [h["hash"] for h in history["resumed"]] == [h["hash"] for h in history["full"]]
    assert all(h["kept"] < h["total"] for h in history["full"])  # DRCDown thinned each epoch
    subsets = {n: np.load(d / "drcdown_subsets.npz") for n, d in dirs.items()}
    np.testing.assert_array_equal(subsets["resumed"]["epoch_2"], subsets["full"]["epoch_2"])
    keys = [k for k in full if k.startswith(("val_last/", "test_last/", "train/"))]
    assert len(keys) >= 14
    for key in keys:
        assert resumed[key] == pytest.approx(full[key], abs=1e-6), key


def test_resume_keeps_the_val_selected_checkpoint(resume_runs: dict) -> None:
    """Resumed, the val selection still sees the epochs before the interruption."""
    full, resumed = resume_runs["full"], resume_runs["resumed"]
    assert full["val/epoch"] == 0.0
    assert resumed["val/epoch"] == full["val/epoch"]
    for key in ("val/srcc", "test/authentic_like/srcc", "test/synthetic_unseen/plcc"):
        assert resumed[key] == pytest.approx(full[key], abs=1e-6), key


def test_protocol_line_states_selection_crops_seed_and_reshaping(resume_runs: dict) -> None:
    """The caption under the results table of the resumed run, item by item."""
    from syndr_lightning.data.facts import describe_dataset
    from syndr_lightning.data.syndr import SynDRDataModule

    printed, out = resume_runs["printed"], resume_runs["dirs"]["resumed"]
    resolved = yaml.safe_load((out / "config_resolved.yaml").read_text())
    data = {k: v for k, v in resolved["data"].items() if k != "_target_"}
    dm = SynDRDataModule(**data, reshape=ReshapeParams.from_config(resolved["reshape"]))
    dm.setup("fit")
    n_val, n_train = len(dm.val_manifest), dm.n_original
    assert f"selection: max val/srcc; validation: {n_val} held-out images;" in printed
    assert "eval: 2 random crops of 32 px (one centre crop for synthetic_unseen);" in printed
    assert "seed 0;" in printed
    train = describe_dataset("synthetic", dm.train_entry["options"])
    assert f"train: {train} ({n_train} original);" in printed and "{" not in train
    assert "DDCUp off;" in printed
    assert "DRCDown on (T_f=0.5, T_q=10, T_u=2, rule=reference)" in printed


def test_selection_uses_the_val_monitored_checkpoint_whatever_the_callback_order() -> None:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from syndr_lightning.evaluation import _val_checkpoint

    last, best = ModelCheckpoint(monitor=None), ModelCheckpoint(monitor="val/srcc", mode="max")
    for callbacks in ([last, best], [best, last]):
        trainer = L.Trainer(callbacks=callbacks, logger=False, accelerator="cpu")
        assert _val_checkpoint(trainer) is best
    trainer = L.Trainer(callbacks=[last], logger=False, accelerator="cpu")
    assert _val_checkpoint(trainer) is None


def test_last_checkpoint_path_falls_back_to_the_val_callbacks_last_file() -> None:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from syndr_lightning.evaluation import _last_checkpoint_path

    best = ModelCheckpoint(monitor="val/srcc", mode="max", save_last=True)
    best.last_model_path = "run/checkpoints/last.ckpt"
    trainer = L.Trainer(callbacks=[best], logger=False, accelerator="cpu")
    assert _last_checkpoint_path(trainer) == "run/checkpoints/last.ckpt"
    latest = ModelCheckpoint(monitor=None)
    latest.best_model_path = "run/checkpoints/latest.ckpt"
    trainer = L.Trainer(callbacks=[best, latest], logger=False, accelerator="cpu")
    assert _last_checkpoint_path(trainer) == "run/checkpoints/latest.ckpt"
    assert _last_checkpoint_path(L.Trainer(logger=False, enable_checkpointing=False)) == ""


def test_syndr_eval_equals_trainings_test(run: tuple[Path, dict[str, float]]) -> None:
    """One test-time crop rule: `syndr eval` on last.ckpt repeats training's test_last/*
    (the same crops per image, raw scores) to 1e-6, on random and centre-cropped sets."""
    from syndr_lightning.inference.evaluate import evaluate_checkpoint

    out, metrics = run
    data = yaml.safe_load((out / "config_resolved.yaml").read_text())["data"]
    for entry in data["test"]:
        center = (entry.get("crop_mode") or data["eval_crop_mode"]) == "center"
        result = evaluate_checkpoint(
            out / "checkpoints" / "last.ckpt",
            entry["name"],
            entry["root"],
            options=entry["options"],
            crops=data["eval_crops"],
            center=center,
            seed=data["seed"],
            progress=False,
        )
        for m in ("srcc", "plcc", "krcc", "plcc_logistic"):
            got, want = result["metrics"][m], metrics[f"test_last/{entry['label']}/{m}"]
            assert got == pytest.approx(want, abs=1e-6), (entry["label"], m)


def test_hydra_eval_task_equals_trainings_test(
    run: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    """`syndr-train --config-name eval ckpt_path=... data.test=[...]`: several test sets at
    once, each equal to training's test_last/* to 1e-6."""
    from syndr_lightning.eval_task import evaluate

    out, metrics = run
    GlobalHydra.instance().clear()
    cache = out.parent / "cache"
    cfg = compose_config(
        [*TINY, f"paths.cache_dir={cache}", f"paths.log_dir={tmp_path}",
         f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}"],
        output_dir=tmp_path / "eval",
        config_name="eval",
    )  # fmt: skip
    got = evaluate(cfg)
    names = {k.split("/")[1] for k in got}
    assert names == {"authentic_like", "synthetic_unseen"}
    for key, value in got.items():
        assert value == pytest.approx(metrics[key.replace("test/", "test_last/")], abs=1e-6), key
    assert (tmp_path / "eval" / "metrics.json").is_file()
