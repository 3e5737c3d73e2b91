"""The Hydra evaluation task: one checkpoint on several test sets, configured like training.

    syndr-train --config-name eval ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt \\
        'data.test=[{name: csv, root: /data/a.csv}, {name: livec, root: /datasets/livec}]'

Each set is scored exactly as training's test and ``syndr eval`` score it (the same
crop rule, unclamped scores), so the numbers equal training's ``test_last/*`` for
``last.ckpt``. Writes ``metrics.json`` (``test/<label>/<metric>``) in the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from syndr_lightning.utils.errors import ConfigError

__all__ = ["evaluate"]


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score ``cfg.ckpt_path`` on every ``cfg.data.test`` entry; print and save the metrics."""
    from syndr_lightning.inference.evaluate import evaluate_checkpoint, format_report
    from syndr_lightning.logs import log_text, show_run_folder
    from syndr_lightning.provenance import write_metrics
    from syndr_lightning.utils.cpus import set_torch_threads

    ckpt = cfg.get("ckpt_path")
    if not ckpt:
        raise ConfigError(
            "the eval task needs ckpt_path=<run>/checkpoints/last.ckpt (a training checkpoint)"
        )
    if not Path(str(ckpt)).expanduser().is_file():
        raise ConfigError(
            f"ckpt_path={str(ckpt)!r} does not exist; pass a .ckpt written by training"
        )
    data: dict[str, Any] = OmegaConf.to_container(cfg.data, resolve=True)  # type: ignore[assignment]
    tests = data.get("test") or []
    if not tests:
        raise ConfigError(
            "the eval task needs test sets: data.test='[{name: csv, root: /path/labels.csv}]'"
        )
    _check_labels(tests)
    set_torch_threads()
    metrics: dict[str, float] = {}
    for i, entry in enumerate(tests):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("root"):
            raise ConfigError(f"data.test.{i} must be a mapping with name and root; got {entry!r}")
        if entry.get("resize") is not None:
            raise ConfigError(f"data.test.{i}.resize is not supported by the eval task yet")
        label = str(entry.get("label") or entry["name"])
        mode = entry.get("crop_mode") or data.get("eval_crop_mode", "random")
        result = evaluate_checkpoint(
            str(ckpt),
            str(entry["name"]),
            str(entry["root"]),
            options=entry.get("options") or {},
            crops=int(data.get("eval_crops", 5)),
            center=mode == "center",
            batch_size=int(data.get("eval_batch_size") or data.get("batch_size", 16)),
            workers=int(data.get("num_workers", 0)),
            seed=int(cfg.get("seed", 0)),
            progress=False,
        )
        result["protocol"]["dataset"] = label
        report = format_report(result)
        print(report, end="", flush=True)
        log_text(report)
        for key, value in result["metrics"].items():
            metrics[f"test/{label}/{key}"] = float(value)
    out_dir = Path(str(cfg.paths.output_dir))
    write_metrics(metrics, out_dir, cfg, "given checkpoint")
    show_run_folder(str(out_dir))
    return metrics


def _check_labels(tests: list[Any]) -> None:
    """Each test set's metrics are saved under its label: two sets of one label (two CSV
    files, both ``csv``) would overwrite each other in metrics.json."""
    seen: dict[str, int] = {}
    for i, entry in enumerate(tests):
        if not isinstance(entry, dict):
            continue  # reported by the loop, naming the entry
        label = str(entry.get("label") or entry.get("name"))
        if label in seen:
            raise ConfigError(
                f"data.test.{seen[label]} and data.test.{i} are both labelled {label!r} and "
                f"would overwrite each other's metrics; give one a distinct label, e.g. "
                f"data.test.{i}.label={label}_{i}"
            )
        seen[label] = i
