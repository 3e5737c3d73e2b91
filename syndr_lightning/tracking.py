"""What a run sends to W&B and TensorBoard beyond scalars: summaries, metadata, tables,
run files and artifacts (docs/metrics.md).

Plain functions over a list of Lightning loggers: each picks the W&B and TensorBoard
loggers it finds (by class name, so neither package is imported unless such a logger is
there) and skips the others (CSV: the files in the run folder are its record). Call them
on global rank 0; Lightning's loggers are inert elsewhere.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "define_summary",
    "log_artifact",
    "log_table",
    "save_files",
    "set_metadata",
    "set_summary",
    "tensorboard_writers",
    "wandb_runs",
]


def wandb_runs(loggers: Iterable[Any]) -> list[Any]:
    """The ``wandb`` runs of the W&B loggers (started on first use)."""
    runs = []
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            run = logger.experiment
            if hasattr(run, "summary"):  # not the dummy experiment of a non-zero rank
                runs.append(run)
    return runs


def tensorboard_writers(loggers: Iterable[Any]) -> list[Any]:
    """The ``SummaryWriter`` of each TensorBoard logger."""
    return [lg.experiment for lg in loggers if type(lg).__name__ == "TensorBoardLogger"]


def define_summary(loggers: Iterable[Any], selection: str) -> None:
    """Tell W&B which value of a series is the run's headline (its summary).

    ``val/srcc``: its maximum under ``selection="val"`` (the selected checkpoint's value;
    summary key ``val/srcc.max``), its last value under ``"last"`` (``val/srcc.last``).
    The test numbers of every test set (``test/<set>/*``, ``test_last/<set>/*``) are
    logged once each, so W&B's default summary (the last value) is their value as it
    is; no rule is defined for them (the ``copy`` rule is deprecated). Epoch-level series (``val/*``, ``drcdown/*``,
    learning rates, ``train/loss_epoch``) are plotted against ``epoch``.
    """
    for run in wandb_runs(loggers):
        run.define_metric("epoch")
        for pattern in ("val/*", "drcdown/*", "lr-*", "train/loss_epoch"):
            run.define_metric(pattern, step_metric="epoch", step_sync=True)
        run.define_metric(
            "val/srcc",
            step_metric="epoch",
            step_sync=True,
            summary="max" if selection == "val" else "last",
        )


def set_summary(loggers: Iterable[Any], values: Mapping[str, float]) -> None:
    """Write final numbers (``metrics.json`` keys that are no series) into the W&B summary."""
    for run in wandb_runs(loggers):
        for key, value in values.items():
            run.summary[key] = float(value)


def set_metadata(loggers: Iterable[Any], values: Mapping[str, str], step: int = 0) -> None:
    """Strings describing the run: W&B summary entries and TensorBoard text (at ``step``)."""
    for run in wandb_runs(loggers):
        for key, value in values.items():
            run.summary[key] = str(value)
    for writer in tensorboard_writers(loggers):
        for key, value in values.items():
            writer.add_text(key, _markdown_text(str(value)), global_step=step)
        writer.flush()


def _markdown_text(value: str) -> str:
    """TensorBoard renders text as markdown: multi-line values as a code block."""
    return f"```\n{value}\n```" if "\n" in value else value


def log_table(loggers: Iterable[Any], key: str, frame: pd.DataFrame, step: int = 0) -> bool:
    """Log ``frame`` as a W&B table under ``key``; False when no W&B logger is there."""
    done = False
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            logger.log_table(key=key, dataframe=frame, step=step)
            done = True
    return done


def save_files(loggers: Iterable[Any], files: Sequence[Path], base: Path) -> list[str]:
    """Copy ``files`` (paths under ``base``) into each W&B run's ``files/`` folder and
    save them there (uploaded now, or by ``wandb sync``); returns the saved relative paths.

    A copy, not wandb's link to the original: the run folder may move before a sync, and
    the snapshot is the file as it was when the run ended.
    """
    saved: list[str] = []
    for run in wandb_runs(loggers):
        run_dir = Path(run.dir)
        for path in files:
            rel = Path(path).resolve().relative_to(Path(base).resolve())
            target = run_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(path, tmp)
            tmp.replace(target)
            run.save(str(target), base_path=str(run_dir), policy="now")
            saved.append(rel.as_posix())
    return saved


def artifact_name(text: str) -> str:
    """``text`` with every character W&B refuses in artifact names replaced by ``-``."""
    return re.sub(r"[^\w.-]", "-", text)[:128]


def log_artifact(
    loggers: Iterable[Any],
    name: str,
    kind: str,
    files: Mapping[str, Path],
    *,
    aliases: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> list[str]:
    """Log ``files`` (name in the artifact -> path) as one W&B artifact version of type
    ``kind``; returns the names of the logged artifacts (one per W&B logger)."""
    logged: list[str] = []
    present = {k: Path(v) for k, v in files.items() if Path(v).is_file()}
    if not present:
        return logged
    runs = wandb_runs(loggers)
    if not runs:
        return logged
    import wandb

    for run in runs:
        artifact = wandb.Artifact(artifact_name(name), type=kind, metadata=dict(metadata or {}))
        for arc_name, path in present.items():
            artifact.add_file(str(path), name=arc_name)
        run.log_artifact(artifact, aliases=list(aliases) or None)
        logged.append(artifact.name)
    return logged
