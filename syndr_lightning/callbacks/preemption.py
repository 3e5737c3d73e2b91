"""Atomic checkpoints and preemption: a stopped run is resumable and never reported as done.

* :class:`AtomicCheckpointIO` writes every Lightning checkpoint (``epoch_*.ckpt``,
  ``last.ckpt``, SLURM's ``hpc_ckpt_*.ckpt``, ``preempted.ckpt``) to a temporary name in
  the checkpoint's own folder, fsyncs it and renames it into place. (Lightning's default
  writes through fsspec, whose local "transaction" stages the file in the system temp
  folder and *moves* it: a copy, not a rename, when the log folder is on another
  filesystem, so a full disk or a kill leaves a partial file under the final name.)
* :class:`PreemptionCheckpoint`: on SIGTERM (Lightning stops the loop at the next batch
  with ``SIGTERMException``) it saves ``checkpoints/preempted.ckpt``, resumable with
  ``ckpt_path=...``, and, under SLURM, records it for the job's id so that a requeued job
  resumes from it by itself (:func:`requeued_checkpoint`).
* Under SLURM, SIGUSR1 (``sbatch --signal=USR1@90``) is Lightning's auto-requeue signal
  (``SLURMEnvironment(auto_requeue=True)``, the default): it saves ``hpc_ckpt_N.ckpt``
  (through :class:`AtomicCheckpointIO`) and runs ``scontrol requeue <job>``; SLURM then
  sends SIGTERM, handled as above.
* :func:`preemption_guard` turns the stop into :class:`PreemptedError`: one line saying
  how to resume, exit status 143 (not 0: a scheduler must not see a finished job).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

from syndr_lightning.utils.errors import PreemptedError
from syndr_lightning.utils.io import atomic_open, atomic_path

__all__ = [
    "PREEMPTED_NAME",
    "AtomicCheckpointIO",
    "PreemptionCheckpoint",
    "forget_requeue",
    "preemption_guard",
    "requeued_checkpoint",
    "slurm_job_key",
]

log = logging.getLogger(__name__)

PREEMPTED_NAME = "preempted.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that saves through a temporary file beside the target."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """``torch.save`` to ``.<name>.*.tmp`` in the same folder, fsync, rename."""
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        buffer = io.BytesIO()  # serialised first: a full disk is then a plain OSError
        torch.save(checkpoint, buffer)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())


def slurm_job_key() -> str | None:
    """The SLURM job's id (``<array job>_<task>`` for array jobs), None outside SLURM."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array is not None and os.environ.get("SLURM_ARRAY_TASK_ID") is not None:
        return f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    job = os.environ.get("SLURM_JOB_ID")
    return job if job and job.replace("_", "").replace("-", "").isdigit() else None


def _pointer(log_dir: str | os.PathLike[str], job: str) -> Path:
    return Path(log_dir) / ".preempted" / f"{job}.json"


def forget_requeue(log_dir: str | os.PathLike[str] | None) -> None:
    """Drop this SLURM job's resume record (the run it pointed to has finished)."""
    job = slurm_job_key()
    if job is not None and log_dir is not None:
        with contextlib.suppress(OSError):
            _pointer(log_dir, job).unlink()


def requeued_checkpoint(log_dir: str | os.PathLike[str] | None) -> str | None:
    """The checkpoint a requeued SLURM job resumes from (its previous run's, recorded for
    the same job id and command line), or None."""
    job = slurm_job_key()
    if job is None or log_dir is None:
        return None
    try:
        record = json.loads(_pointer(log_dir, job).read_text())
    except (OSError, ValueError):
        return None
    ckpt = record.get("ckpt") if isinstance(record, dict) else None
    if not ckpt or not Path(str(ckpt)).is_file():
        return None
    if record.get("argv") != sys.argv[1:]:
        return None  # another command of the same job: not the preempted run
    log.warning("requeued SLURM job %s: resuming from %s", job, ckpt)
    return str(ckpt)


class PreemptionCheckpoint(Callback):
    """Save a resumable checkpoint when Lightning stops the run on SIGTERM."""

    def __init__(self, dirpath: str | os.PathLike[str], log_dir: str | None = None) -> None:
        self.dirpath = Path(dirpath)
        self.log_dir = log_dir
        self.saved: Path | None = None
        self.where = ""

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        """On SIGTERM: write ``preempted.ckpt`` (atomically) and, under SLURM, its pointer."""
        if not isinstance(exception, SIGTERMException):
            return
        self.where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        if trainer.state.fn != "fit":
            return  # testing: nothing to save, the run is resumed from its last checkpoint
        path = self.dirpath / PREEMPTED_NAME
        trainer.save_checkpoint(path)
        self.saved = path
        job = slurm_job_key()
        if job is not None and self.log_dir and trainer.is_global_zero:
            with atomic_open(_pointer(self.log_dir, job)) as fh:
                json.dump({"ckpt": str(path.resolve()), "argv": sys.argv[1:]}, fh)


@contextlib.contextmanager
def preemption_guard(callback: PreemptionCheckpoint, resume_hint: str) -> Iterator[None]:
    """Turn Lightning's ``SIGTERMException`` (exit 0) into :class:`PreemptedError`."""
    try:
        yield
    except SIGTERMException:
        if callback.saved is not None:
            how = f"resume with {resume_hint} ckpt_path={callback.saved}"
        else:
            how = f"rerun it, resuming from the run's last.ckpt ({resume_hint} ckpt_path=...)"
        slurm = " (a requeued SLURM job resumes by itself)" if slurm_job_key() else ""
        raise PreemptedError(
            f"stopped by SIGTERM (preempted) at {callback.where or 'an unknown point'}; "
            f"{how}{slurm}"
        ) from None
