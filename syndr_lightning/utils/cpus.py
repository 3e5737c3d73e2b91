"""How many CPUs this process may use, and the thread / worker counts that follow from it.

On a shared machine or a cluster node the process is often allowed fewer CPUs than the
machine has (``taskset``, cgroups, SLURM's ``--cpus-per-task``); sizing torch's thread
pool and the loader workers by ``os.cpu_count()`` then oversubscribes the allowed cores
and the run burns CPU time waiting. Standard library only; torch is imported only by
:func:`set_torch_threads`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

__all__ = ["cap_workers", "set_torch_threads", "usable_cpus"]

log = logging.getLogger("syndr_lightning")

#: Environment variables naming a thread count the user chose; they win over ours.
_USER_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def usable_cpus(environ: Mapping[str, str] | None = None) -> int:
    """The CPUs this process may use: its affinity mask, bounded by SLURM's
    ``SLURM_CPUS_PER_TASK`` when that is set (a positive integer); at least 1."""
    env = os.environ if environ is None else environ
    n = _affinity()
    slurm = str(env.get("SLURM_CPUS_PER_TASK", "")).strip()
    if slurm.isdigit() and int(slurm) > 0:
        n = min(n, int(slurm))
    return max(1, n)


def cap_workers(requested: int, key: str = "", cpus: int | None = None) -> int:
    """Loader worker processes: ``requested``, but at most one fewer than the usable CPUs
    (the main process computes too; none on a single CPU). Says so in one INFO line
    (naming ``key``) when it lowers the count."""
    n = usable_cpus() if cpus is None else max(1, int(cpus))
    if int(requested) <= n - 1:  # also a negative count, left to the caller's check
        return int(requested)
    capped = n - 1
    if key:
        log.info(
            f"{key}={requested} lowered to {capped}: this process may use {n} CPU(s) "
            f"(affinity / SLURM_CPUS_PER_TASK)"
        )
    return capped


def set_torch_threads(cpus: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Bound torch's intra-op thread pool by the usable CPUs and return its size.

    torch sizes the pool by the machine's cores, whatever the affinity mask or SLURM
    allows; a smaller pool already set (``torch.set_num_threads``) is kept, and an
    explicit ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` is left to torch.
    """
    import torch

    env = os.environ if environ is None else environ
    current = int(torch.get_num_threads())
    if any(str(env.get(name, "")).strip() for name in _USER_THREADS):
        return current
    n = min(current, usable_cpus(env) if cpus is None else max(1, int(cpus)))
    if n != current:
        torch.set_num_threads(n)
    return n
