"""Signals outside Lightning's handlers: one line, never a silent death.

* :func:`sigterm_as_preempted`: while a build step runs before Lightning installs its
  SIGTERM handler (DDCUp's upsampled set is built in ``prepare_data``/``setup``), SIGTERM
  raises :class:`PreemptedError` (one line, exit status 143) instead of killing the
  process without a word. Every build writes atomically, so nothing half-built is kept.
* :func:`sigusr1_outside_slurm`: SIGUSR1 is SLURM's requeue signal; outside SLURM nothing
  handles it and Python's default action kills the run silently (status 138). There it
  is logged and ignored (SIGTERM is the signal that stops a run resumably).

Free of Lightning; both act only in the main thread (signal handlers live there).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from syndr_lightning.utils.errors import PreemptedError

__all__ = ["sigterm_as_preempted", "sigusr1_outside_slurm"]

log = logging.getLogger(__name__)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigterm_as_preempted(what: str) -> Iterator[None]:
    """Within the block, SIGTERM raises PreemptedError naming ``what`` (then the previous
    handler is restored). A handler other than Python's default is left in place."""
    if not _main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    owner = os.getpid()

    def stop(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a forked worker (GenDist's pool): die as by default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise PreemptedError(
            f"stopped by SIGTERM (preempted) while {what}; nothing half-built is kept: "
            "rerun the same command to build it again (finished parts are reused)"
        )

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _under_slurm() -> bool:
    """Lightning's test: a SLURM job that is not an interactive shell."""
    name = os.environ.get("SLURM_JOB_NAME", "")
    return "SLURM_NTASKS" in os.environ and name not in ("bash", "interactive")


def sigusr1_outside_slurm() -> None:
    """Outside SLURM, log and ignore SIGUSR1 instead of dying silently (status 138)."""
    if _under_slurm() or not _main_thread():
        return
    if signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL:
        return

    def ignore(signum: int, frame: FrameType | None) -> None:
        log.warning(
            "SIGUSR1 received outside SLURM: ignored (it is SLURM's requeue signal); "
            "send SIGTERM to stop the run with a resumable checkpoint"
        )

    signal.signal(signal.SIGUSR1, ignore)
