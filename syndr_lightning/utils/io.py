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


def read_npy(path: str | os.PathLike[str], what: str = "array") -> Any:
    """``numpy.load(path, allow_pickle=False)`` after checking the header against the file.

    A header that claims more data than the file holds (a truncated file, or a crafted one
    whose huge shape would make numpy allocate it) is refused before anything is
    allocated. Raises InputError naming the file; returns an ndarray (or an NpzFile for
    a ``.npz`` archive, which the caller refuses or uses).
    """
    import numpy as np

    from syndr_lightning.utils.errors import InputError

    where = Path(path)
    try:
        with open(where, "rb") as fh:
            magic = fh.read(6)
            fh.seek(0)
            if magic == b"\x93NUMPY":
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _order, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, _order, dtype = np.lib.format.read_array_header_2_0(fh)
                if dtype.hasobject:
                    raise InputError(
                        f"{what}: {where} holds Python objects (a pickled array); save plain "
                        "numbers with numpy.save"
                    )
                need = int(np.prod(shape, dtype=object)) * dtype.itemsize
                have = where.stat().st_size - fh.tell()
                if need > have:
                    raise InputError(
                        f"{what}: {where} is truncated or corrupt: its header claims shape "
                        f"{tuple(shape)} ({need:,} bytes) but the file holds {have:,} bytes "
                        "of data; re-create it with numpy.save"
                    )
        return np.load(where, allow_pickle=False)
    except InputError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise InputError(
            f"{what}: {where} is not a readable .npy array ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); save it with numpy.save"
        ) from None
