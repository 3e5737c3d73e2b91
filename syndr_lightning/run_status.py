"""``run_status.json``: how a training run ended, written atomically into its run folder.

``{"status": "finished"|"diverged"|"failed"|"preempted", "exit_code": int, "reason":
"<one line or empty>", "epoch": int, "step": int}``. ``finished`` is written by the task
after ``metrics.json``; the other three by the entry point's error handler
(``__main__.run_task``). Summaries read it to count diverged and failed jobs as such.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from syndr_lightning.utils.errors import DivergenceError, PreemptedError, exit_code, one_line
from syndr_lightning.utils.io import atomic_open

__all__ = ["STATUS_FILE", "progress_of", "status_of", "write_run_status"]

STATUS_FILE = "run_status.json"


def _cause(exc: BaseException) -> BaseException:
    """The divergence or preemption behind ``exc`` (a wrapper such as the campaign's
    ``RunFailed`` keeps it as ``__cause__``), else ``exc``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DivergenceError | PreemptedError):
            return seen
        seen = seen.__cause__
    return exc


def status_of(exc: BaseException | None) -> str:
    """``finished`` (no error), ``diverged``, ``preempted`` or ``failed``."""
    if exc is None:
        return "finished"
    cause = _cause(exc)
    if isinstance(cause, DivergenceError):
        return "diverged"
    if isinstance(cause, PreemptedError):
        return "preempted"
    return "failed"


def progress_of(exc: BaseException | None) -> tuple[int, int]:
    """(epoch, step) the run had reached when ``exc`` stopped it (attached by the task)."""
    epoch, step = getattr(exc, "run_progress", (0, 0)) if exc is not None else (0, 0)
    return int(epoch), int(step)


def write_run_status(
    run_dir: str | os.PathLike[str],
    exc: BaseException | None = None,
    *,
    epoch: int | None = None,
    step: int | None = None,
) -> dict[str, Any]:
    """Write ``run_status.json`` for a run that ended with ``exc`` (None: finished)."""
    at_epoch, at_step = progress_of(exc)
    if exc is not None and not hasattr(exc, "run_progress"):
        at_epoch, at_step = progress_of(_cause(exc))
    code = 0 if exc is None else exit_code(_cause(exc) if status_of(exc) != "failed" else exc)
    record = {
        "status": status_of(exc),
        "exit_code": code,
        "reason": "" if exc is None else one_line(exc) or type(exc).__name__,
        "epoch": int(at_epoch if epoch is None else epoch),
        "step": int(at_step if step is None else step),
    }
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / STATUS_FILE, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1)
        fh.write("\n")
    return record
