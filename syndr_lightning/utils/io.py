"""Atomic file writing, file identities for cache keys, run provenance (git SHA)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from syndr_lightning.utils.errors import DatasetError


def _umask() -> int:
    """The process umask (read without changing it for longer than two calls)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    Whatever the caller writes to the yielded path appears at ``path`` atomically, so a
    crash or Ctrl-C never leaves a half-written file behind.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file 0600; give it the mode a plain open() would have given.
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing and atomically move it onto ``path`` on success."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; rename it onto ``path`` on success.

    ``path`` must not exist yet (or is replaced when it does). A crash leaves only a
    ``.<name>.*.tmp`` directory that readers never trust.
    """
    import shutil

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def git_sha(cwd: str | os.PathLike[str] | None = None) -> str:
    """Return the git commit of the source tree (with ``-dirty`` when modified), or 'unknown'."""
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def file_identity(path: str | os.PathLike[str]) -> str:
    """The identity of a file in cache keys: ``name|size|mtime_ns``.

    Name, size and modification time change when a file is replaced or edited and survive
    moving a folder (``mv``), so a key built from them (plus the full path where the cache
    is bound to a location) is reused exactly while the data are the same. A missing or
    unreadable file raises ``DatasetError`` naming it.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DatasetError(
            f"{str(p)!r} does not exist; check the dataset folder (only existing files "
            "can be identified in a cache key)"
        ) from None
    except OSError as exc:
        raise DatasetError(f"cannot read {str(p)!r} ({exc}); check its permissions") from None
    return f"{p.name}|{st.st_size}|{st.st_mtime_ns}"
