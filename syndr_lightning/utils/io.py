"""Atomic file writing, file identities for cache keys, run provenance (git SHA)."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from syndr_lightning.utils.errors import ConfigError, DatasetError, DiskFullError

#: errno values meaning "the disk (or quota) is full".
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


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
    if final.is_dir():
        raise ConfigError(
            f"{str(final)!r} is a directory; pass a file name to write (the folder is left as it is)"
        )
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise _write_error(final, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            # mkstemp makes the file 0600; give it the mode a plain open() would have given.
            if tmp_path.exists():
                os.chmod(tmp_path, 0o666 & ~_umask())
                fsync_file(tmp_path)
            os.replace(tmp_path, final)
            fsync_dir(final.parent)
        except OSError as exc:
            if exc.errno in _FULL:
                raise _write_error(final, exc) from None
            raise
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush ``path``'s data to the disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_error(final: Path, exc: OSError) -> Exception:
    """One line for a write that failed: a full disk, or a folder we may not write."""
    if exc.errno in _FULL:
        return DiskFullError(
            f"no space left on the device while writing {str(final)!r} ({exc.strerror}); "
            "nothing was left under that name - free space or write elsewhere"
        )
    return ConfigError(
        f"cannot write {str(final)!r} ({exc.strerror or exc}); choose a writable location"
    )


def check_output_file(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Refuse an output path that is a folder or a read-only file (ConfigError, one line).

    A read-only file is the user's way of saying "keep this": it is not replaced, even by
    root (who may write anything), since a rename would silently drop the protection.
    """
    out = Path(path)
    if out.is_dir():
        raise ConfigError(
            f"{what} {str(out)!r} is a directory; pass a file name to write (the folder is "
            "left as it is)"
        )
    try:
        mode = out.stat().st_mode
    except OSError:
        return out
    if not mode & 0o222:
        raise ConfigError(
            f"{what} {str(out)!r} is read-only; it is not replaced - make it writable or "
            "choose another name"
        )
    return out


def finite_json(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN/Infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return finite_json(obj.item())
    return obj


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes undefined values (NaN, inf) as ``null``: valid JSON."""
    import json

    return json.dumps(finite_json(obj), allow_nan=False, **kwargs)


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
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(final, exc) from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except OSError as exc:
            if exc.errno in _FULL:
                raise _write_error(final, exc) from None
            raise
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
        arr = np.load(where, allow_pickle=False)
        if isinstance(arr, np.ndarray) and not arr.dtype.isnative:
            # Big-endian files (numpy.save on another machine, MATLAB exports) are valid:
            # read them in this machine's byte order (torch refuses foreign byte orders).
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr
    except InputError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise InputError(
            f"{what}: {where} is not a readable .npy array ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); save it with numpy.save"
        ) from None
