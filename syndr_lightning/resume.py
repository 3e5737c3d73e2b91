"""Resuming a training: check the checkpoint belongs to this run, continue its run folder.

``ckpt_path=<run>/checkpoints/<name>.ckpt`` (or the checkpoint a requeued SLURM job finds
by itself) resumes the run that wrote it *in its own run folder*: checkpoints, the
CSV curves, TensorBoard events, ``drcdown_history.json``, the log file and the final
``metrics.json`` continue there. Hydra has already made a new time-stamped folder for
the command; it keeps Hydra's own record of the command (``.hydra/``) and a
``resumed_in.txt`` naming the folder the run continued in, and its log file moves to the
resumed folder (appended). A checkpoint that is not inside a run folder
(``<folder>/checkpoints/*.ckpt`` beside a ``config_resolved.yaml``) resumes in the new
folder, as before.
"""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from syndr_lightning.run_identity import IDENTITY_KEY, check_checkpoint_identity, run_identity
from syndr_lightning.utils.checkpoints import check_resume_checkpoint
from syndr_lightning.utils.io import atomic_open

__all__ = [
    "CONTINUED_FILE",
    "check_resume",
    "continue_csv_curves",
    "continue_run_folder",
    "run_folder_of",
]

log = logging.getLogger(__name__)

CONTINUED_FILE = "resumed_in.txt"


def run_folder_of(ckpt_path: str | Path) -> Path | None:
    """The run folder a checkpoint belongs to, or None when it is not in one."""
    ckpt = Path(ckpt_path).expanduser().resolve()
    folder = ckpt.parent.parent
    if ckpt.parent.name == "checkpoints" and (folder / "config_resolved.yaml").is_file():
        return folder
    return None


def check_resume(cfg: DictConfig, ckpt_path: str) -> dict[str, Any]:
    """Read ``ckpt_path`` (weights only, once) and refuse it in one line when training
    cannot resume from it (``utils.checkpoints.check_resume_checkpoint``: missing, a
    folder, truncated, not a Lightning checkpoint) or when it belongs to another run
    (ConfigError naming what differs); return the checkpoint."""
    key = "ckpt_path" if cfg.get("ckpt_path") else "requeued checkpoint"
    checkpoint = check_resume_checkpoint(ckpt_path, key)
    check_checkpoint_identity(checkpoint.get(IDENTITY_KEY), run_identity(cfg), str(ckpt_path))
    return checkpoint


def continue_run_folder(cfg: DictConfig, new_dir: Path, old_dir: Path) -> Path:
    """Point the run's output at ``old_dir`` (the checkpoint's run folder): set
    ``paths.output_dir``, move the log file(s) there, leave ``resumed_in.txt`` in
    ``new_dir``. Returns ``old_dir``."""
    new_dir, old_dir = Path(new_dir).resolve(), Path(old_dir).resolve()
    if new_dir == old_dir:
        return old_dir
    with open_dict(cfg):
        cfg.paths.output_dir = str(old_dir)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not isinstance(handler, logging.FileHandler):
            continue
        path = Path(handler.baseFilename)
        if path.parent.resolve() != new_dir:
            continue
        moved = logging.FileHandler(old_dir / path.name, mode="a", encoding="utf-8")
        moved.setLevel(handler.level)
        moved.setFormatter(handler.formatter)
        for filt in handler.filters:
            moved.addFilter(filt)
        root.removeHandler(handler)
        handler.close()
        root.addHandler(moved)
        if path.is_file() and path.stat().st_size == 0:
            path.unlink()
    new_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(new_dir / CONTINUED_FILE, "w", encoding="utf-8") as fh:
        fh.write(f"{old_dir}\n")
    log.info("resuming in the checkpoint's run folder %s", old_dir)
    return old_dir


def continue_csv_curves(loggers: list[Any], global_step: int) -> None:
    """Keep the curves a CSV logger wrote before the checkpoint (Lightning's CSVLogger
    deletes an existing ``metrics.csv``): rows logged at steps before ``global_step`` stay,
    later ones (written between the checkpoint and the interruption) are dropped, and the
    resumed run appends to them."""
    from lightning.pytorch.loggers import CSVLogger

    for lg in loggers:
        if not isinstance(lg, CSVLogger):
            continue
        path = Path(lg.log_dir) / "metrics.csv"
        if not path.is_file():
            continue
        kept = path.with_name(".metrics.csv.resumed")
        shutil.copyfile(path, kept)
        writer = lg.experiment  # created now: deletes metrics.csv
        with open(kept, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = [r for r in reader if _step(r) < int(global_step)]
        with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
            out = csv.DictWriter(fh, fieldnames=header)
            out.writeheader()
            out.writerows(rows)
        kept.unlink()
        writer.metrics_keys = sorted(header)


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0
