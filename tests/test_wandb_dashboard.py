"""A real short training run logged to W&B (offline, no mock), TensorBoard and CSV at once,
read back from what each wrote: the run's name, group and tags, the media (prediction-vs-MOS
scatter and table per test set, learning curves), the artifacts (upsampled set, opt-in
checkpoints), the run files, the summary rules, the config logged once, and every logged
key in the metric vocabulary (docs/metrics.md)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hydra.core.global_hydra import GlobalHydra
from wandb_records import OfflineRun, read_offline_run

from syndr_lightning.metric_keys import KEYS, lookup, render_markdown, unknown_keys
from syndr_lightning.reshape.clusters import cluster_stats
from syndr_lightning.reshape.engine import STAT_NAMES

SIZE = "[32,40]"
# Tiny offline SynDR run: DDCUp (tiny_cnn encoder, every candidate) + DRCDown, two test sets.
TINY = [
    "model=tiny",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "select_on_test=true",  # test_best_on_test/* (labelled optimistic) in the summary
    "data.batch_size=16",
    "data.crop_size=16",
    "data.eval_crops=1",
    "data.train.options.n_refs=4",
    "data.train.options.n_types=2",
    f"data.train.options.size={SIZE}",
    "data.candidates.options.n=6",
    f"data.candidates.options.size={SIZE}",
    "data.test.0.options.n=12",
    f"data.test.0.options.size={SIZE}",
    "data.test.1.options.n_refs=2",
    "data.test.1.options.n_types=2",
    "data.test.1.options.n_levels=2",
    f"data.test.1.options.size={SIZE}",
    "reshape.encoder=tiny_cnn",
    "reshape.encoder_weights=none",
    "reshape.encoder_crop=16",
    "reshape.select_candidates=false",
    "reshape.T_u=2",
    "callbacks.rich_progress_bar=null",
    "callbacks.dashboard.checkpoints=true",
    "logger=many",
    "tags=[dashboard]",
]
TEST_SETS = ("authentic_like", "synthetic_unseen")
PREFIXES = ("test", "test_last")


def _run_logged(tmp: Path) -> dict[str, Any]:
    """The short offline run all checks read (one run: wandb's start-up is slow, and one
    test function keeps it one run under pytest-xdist too)."""
    from syndr_lightning.train import compose_config, train

    with pytest.MonkeyPatch.context() as mp:
        for var in ("WANDB_API_KEY", "WANDB_BASE_URL"):
            mp.delenv(var, raising=False)
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
            mp.setenv(var, str(tmp / "wandb_home" / var.lower()))
        paths = [f"paths.cache_dir={tmp / 'cache'}", f"paths.log_dir={tmp / 'logs'}"]
        cfg = compose_config([*TINY, *paths], output_dir=tmp / "run")
        metrics = train(cfg)
        GlobalHydra.instance().clear()
        import wandb

        wandb.teardown()  # wandb's service writes the run's last records as it stops
    run_dir = tmp / "run"
    (folder,) = (run_dir / "wandb").glob("offline-run-*")
    return {
        "run_dir": run_dir,
        "metrics": metrics,
        "wandb": read_offline_run(folder),
        "upsampled": json.loads((run_dir / "syndr_protocol.json").read_text())["upsample_key"],
        "cache": tmp / "cache",
    }


def _wandb(logged: dict[str, Any]) -> OfflineRun:
    return logged["wandb"]


def _md5_b64(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


def _check_run_name_group_tags_and_config_once(logged: dict[str, Any]) -> None:
    run = _wandb(logged)
    assert run.exit_code == 0  # the run was finished
    assert run.name == "train-tiny_cnn-seed0"
    assert run.group == "train"
    assert run.tags == ["dashboard", "train"]
    # The whole config once (model.* inside); never the model's hparams again per
    # fit/validate/test call.
    assert len(run.configs) == 1
    (config,) = run.configs
    assert config["model"]["backbone"] == "tiny_cnn" and "backbone" not in config


def _check_media_per_test_set_and_learning_curves(logged: dict[str, Any]) -> None:
    run, run_dir = _wandb(logged), logged["run_dir"]
    media = run.files_dir / "media"
    for prefix in PREFIXES:
        for name in TEST_SETS:
            (png,) = (media / "images" / prefix / name).glob("scatter_*.png")
            assert png.stat().st_size > 1000
            assert (run_dir / "figures" / f"scatter_{prefix}_{name}.png").is_file()
            csv = pd.read_csv(run_dir / "predictions" / f"{prefix}_{name}.csv")
            (table_file,) = (media / "table" / prefix / name).glob("predictions_*.table.json")
            table = json.loads(table_file.read_text())
            assert table["columns"] == list(csv.columns)
            assert len(table["data"]) == len(csv) and len(csv) > 0
            assert {"path", "mos", "prediction"} <= set(csv.columns)
            assert csv["index"].is_unique
            # The headline correlation is the one of these predictions.
            srcc = pd.Series(csv["prediction"]).corr(csv["mos"], method="spearman")
            assert srcc == pytest.approx(logged["metrics"][f"{prefix}/{name}/srcc"], abs=1e-4)
    assert len(pd.read_csv(run_dir / "predictions" / "test_authentic_like.csv")) == 12
    (curves,) = (media / "images" / "train").glob("learning_curves_*.png")
    assert curves.stat().st_size > 1000 and (run_dir / "figures" / "learning_curves.png").is_file()
    media = {
        f"{p}/{n}/{kind}"
        for p in PREFIXES
        for n in TEST_SETS
        for kind in ("scatter", "predictions")
    }
    assert media | {"train/learning_curves"} <= run.history_keys()


def _check_artifacts_upsampled_set_and_checkpoints(logged: dict[str, Any]) -> None:
    run = _wandb(logged)
    by_type: dict[str, list[Any]] = {}
    for art in run.artifacts:
        by_type.setdefault(art.type, []).append(art)
    key = str(logged["upsampled"])
    (dataset,) = by_type["dataset"]
    assert dataset.name == f"upsampled-{key}"
    contents = {c.path: c for c in dataset.manifest.contents}
    assert set(contents) == {"manifest.csv", "candidate_pool.txt", "meta.json"}
    (folder,) = (logged["cache"] / "upsampled").rglob(f"{key}/manifest.csv")
    for name, entry in contents.items():
        assert entry.digest == _md5_b64(folder.parent / name), name
    assert json.loads(dataset.metadata)["key"] == key
    # Opt-in checkpoints: the selected (best val/srcc) and the last one, two versions.
    models = by_type["model"]
    assert [a.name for a in models] == [f"model-{run.folder.name.rsplit('-', 1)[-1]}"] * 2
    aliases = [set(a.aliases) for a in models]
    assert {"selected", "best"} <= aliases[0] and {"last"} <= aliases[1]
    ckpts = logged["run_dir"] / "checkpoints"
    epoch = int(logged["metrics"]["val/epoch"])
    expected = [ckpts / f"epoch_{epoch:03d}.ckpt", ckpts / "last.ckpt"]
    for art, path in zip(models, expected, strict=True):
        (entry,) = art.manifest.contents
        assert entry.path == "model.ckpt" and entry.digest == _md5_b64(path)


def _check_run_files(logged: dict[str, Any]) -> None:
    run, run_dir = _wandb(logged), logged["run_dir"]
    wanted = [
        "config_resolved.yaml",
        "run_info.json",
        "metrics.json",
        "syndr_protocol.json",
        "candidate_pool.txt",
        "drcdown_history.json",
        "drcdown_subsets.npz",
        "figures/learning_curves.png",
        "predictions/test_authentic_like.csv",
    ]
    for rel in wanted:
        assert rel in run.files, rel
        copy = run.files_dir / rel
        assert not copy.is_symlink() and copy.read_bytes() == (run_dir / rel).read_bytes(), rel


def _check_summary_and_metadata(logged: dict[str, Any]) -> None:
    run, metrics = _wandb(logged), logged["metrics"]
    # selection=val: the summary of val/srcc is its maximum, the selected checkpoint's.
    assert run.metrics["val/srcc"].summary.max
    assert run.summary["val/srcc"]["max"] == pytest.approx(metrics["val/srcc"], abs=1e-6)
    for name in TEST_SETS:
        # W&B's default summary (the one value logged); no deprecated `copy` rule.
        assert f"test/{name}/srcc" not in run.metrics
        assert run.summary[f"test/{name}/srcc"] == pytest.approx(metrics[f"test/{name}/srcc"])
    assert run.summary["val_last/srcc"] == pytest.approx(metrics["val_last/srcc"])
    assert run.summary["val/epoch"] == metrics["val/epoch"]
    assert run.summary["run/selection"] == "val"
    assert run.summary["run/protocol"].startswith("selection: max val/srcc")
    history = json.loads((logged["run_dir"] / "drcdown_history.json").read_text())
    # The subset hash is a string in the summary, never a number in the history.
    assert run.summary["drcdown/subset_hash"] == history[-1]["hash"]
    assert "drcdown/subset_hash" not in run.history_keys()
    assert "drcdown/clusters_incl_singletons" in run.history_keys()


def _tensorboard_tags(run_dir: Path) -> dict[str, set[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: dict[str, set[str]] = {}
    (folder,) = (run_dir / "tensorboard").iterdir()
    assert folder.name == "train-tiny_cnn-seed0"
    for events in folder.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"images": 1, "tensors": 1})
        acc.Reload()
        for kind, names in acc.Tags().items():
            if isinstance(names, list):
                tags.setdefault(kind, set()).update(names)
    return tags


def _check_tensorboard_gets_the_figures_and_text(logged: dict[str, Any]) -> None:
    tags = _tensorboard_tags(logged["run_dir"])
    assert {"train/learning_curves", "test/authentic_like/scatter"} <= tags["images"]
    text = {t.removesuffix("/text_summary") for t in tags["tensors"]}
    assert {"run/protocol", "run/config", "drcdown/subset_hash"} <= text


def _check_every_logged_key_is_in_the_vocabulary(logged: dict[str, Any]) -> None:
    run, run_dir = _wandb(logged), logged["run_dir"]
    csv_keys = set(pd.read_csv(run_dir / "csv" / "metrics.csv").columns)
    tb = _tensorboard_tags(run_dir)
    tb_keys = (
        tb["scalars"] | tb["images"] | {t.removesuffix("/text_summary") for t in tb["tensors"]}
    )
    keys = run.history_keys() | set(run.summary) | csv_keys | tb_keys | set(logged["metrics"])
    assert unknown_keys(keys) == []
    # ... and the vocabulary has no dead entry: this run logs every key but the figures
    # of callbacks=umap (UMAP's compilation takes a minute; the same log_figures sends them).
    matched = {lookup(k).pattern for k in keys}  # type: ignore[union-attr]
    umap_only = {"umap/<set>", "drcdown/clusters_start", "drcdown/clusters_final", "curves"}
    assert {k.pattern for k in KEYS} - matched == umap_only
    assert unknown_keys(["drcdown/m", "drcdown/after_n_clusters", "lr-Adam/pg1"]) == [
        "drcdown/after_n_clusters",
        "drcdown/m",
        "lr-Adam/pg1",
    ]


def test_offline_wandb_run_records_names_media_artifacts_files_and_vocabulary(
    tmp_path: Path,
) -> None:
    """A 2-epoch SynDR run with logger=many, read back from the offline W&B run folder
    (records parsed with wandb's protobuf classes), TensorBoard events and the CSV log."""
    logged = _run_logged(tmp_path)
    _check_run_name_group_tags_and_config_once(logged)
    _check_media_per_test_set_and_learning_curves(logged)
    _check_artifacts_upsampled_set_and_checkpoints(logged)
    _check_run_files(logged)
    _check_summary_and_metadata(logged)
    _check_tensorboard_gets_the_figures_and_text(logged)
    _check_every_logged_key_is_in_the_vocabulary(logged)


def test_docs_list_the_vocabulary() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    begin, end = "<!-- metric-keys:begin -->\n", "<!-- metric-keys:end -->"
    assert doc[doc.index(begin) + len(begin) : doc.index(end)] == render_markdown(), (
        "docs/metrics.md is out of date: regenerate the table with "
        "`python -m syndr_lightning.metric_keys`"
    )
    assert len({k.pattern for k in KEYS}) == len(KEYS)
    # Every cluster statistic DRCDown computes is logged under a vocabulary name.
    stats = cluster_stats(np.array([0, 0, 1, -1]), np.array([0, 2, 3]))
    assert set(stats) - {"n_samples", "n_kept", "kept_fraction"} == set(STAT_NAMES)
    for name in STAT_NAMES.values():
        assert lookup(f"drcdown/{name}") and lookup(f"drcdown/{name}_after")


def test_predictions_of_several_ranks_are_gathered_whole() -> None:
    """DDP: each rank holds a different number of rows; the padded all-gather returns all
    of them in rank order (what rank 0 then writes, duplicates of the sampler dropped)."""
    import torch

    from syndr_lightning.callbacks.dashboard import _gather

    ranks = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 5.0])]

    class TwoRanks:  # rank 0's view of a two-process all_gather
        device = torch.device("cpu")
        calls = 0

        def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.calls == 1:  # the row counts
                return torch.tensor([[len(r)] for r in ranks])
            top = tensor.numel()
            padded = [torch.cat([r, torch.zeros(top - len(r))]) for r in ranks]
            return torch.stack(padded)

    assert _gather(TwoRanks(), ranks[0]).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # type: ignore[arg-type]
