"""Build-once locks on a shared filesystem: one builder per cache key, the others wait.

A lock is a directory ``<name>.lock`` created with ``mkdir`` (atomic on local disks and
NFS/Lustre/GPFS). Its owner writes ``owner.json`` (host, pid, token) and keeps a
heartbeat: a thread rewrites ``heartbeat`` every ``heartbeat_s`` seconds. A lock is
stale, and is taken over, when

* its owner runs on this host and its process is gone, or
* its heartbeat has not changed for ``stale_s`` seconds *as seen by the waiter* (the
  waiter's own monotonic clock, so clocks of different hosts never need to agree; an
  owner on another host is never assumed dead just because it is remote).

:func:`build_once` is the pattern every cache uses: return the finished result when
it is there, else take the lock, check again, build, publish atomically; the others
wait for the lock and then reuse what the builder published. Temporary files of a
key are only written while its lock is held, so :func:`remove_stale_temporaries` can
delete the ones nobody holds a lock for (a killed build's leftovers).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from syndr_lightning.utils.errors import ConfigError, DiskFullError, SyndrError

__all__ = [
    "HEARTBEAT_S",
    "STALE_S",
    "BuildLock",
    "build_once",
    "lock_is_live",
    "remove_stale_temporaries",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT_S = 10.0
STALE_S = 120.0
_POLL_S = 0.5


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _owner(lock: Path) -> dict | None:
    raw = _read(lock / "owner.json")
    try:
        info = json.loads(raw) if raw else None
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def _unwritable(folder: Path, exc: OSError) -> SyndrError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"no space left on the device of the cache folder {str(folder)!r}; free space or "
            "point the cache setting (paths.cache_dir / data.cache_dir) elsewhere"
        )
    return ConfigError(
        f"cache folder {str(folder)!r} is not writable ({exc.strerror or exc}); point the "
        f"cache setting (paths.cache_dir / data.cache_dir) at a writable folder, or make this "
        f"one writable"
    )


class BuildLock:
    """An exclusive, heartbeat-kept lock directory ``path`` (use :meth:`acquire`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        heartbeat_s: float = HEARTBEAT_S,
        stale_s: float = STALE_S,
    ) -> None:
        self.path = Path(path)
        self.heartbeat_s = float(heartbeat_s)
        self.stale_s = float(stale_s)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False
        # What a waiter saw of the current owner: (token, heartbeat bytes, first seen).
        self._seen: tuple[str | None, bytes | None, float] | None = None

    # ------------------------------------------------------------------ owning
    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; never waits. ConfigError if unwritable."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(self.path.parent, exc) from None
        if not self._mkdir():
            if not self._is_stale():
                return False
            self._break()
            if not self._mkdir():
                return False
        info = {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token}
        try:
            (self.path / "owner.json").write_text(json.dumps(info))
            self._beat(0)
        except OSError as exc:
            shutil.rmtree(self.path, ignore_errors=True)
            raise _unwritable(self.path.parent, exc) from None
        self.lost = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="syndr-lock")
        self._thread.start()
        return True

    def _mkdir(self) -> bool:
        try:
            os.mkdir(self.path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise _unwritable(self.path.parent, exc) from None
        return True

    def _beat(self, n: int) -> None:
        (self.path / "heartbeat").write_text(f"{self.token} {n}")

    def _heartbeat(self) -> None:
        n = 0
        while not self._stop.wait(self.heartbeat_s):
            n += 1
            info = _owner(self.path)
            if info is None or info.get("token") != self.token:
                self.lost = True  # taken over (we were stopped for longer than stale_s)
                log.warning("lock %s was taken over by another process", self.path)
                return
            with contextlib.suppress(OSError):
                self._beat(n)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock (only if it is still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        info = _owner(self.path)
        if info is not None and info.get("token") == self.token:
            self._remove(self.path)

    # ------------------------------------------------------------------ waiting
    def holder(self) -> str:
        """``host:pid`` of the current owner (for messages)."""
        info = _owner(self.path) or {}
        return f"{info.get('host', '?')}:{info.get('pid', '?')}"

    def _is_stale(self) -> bool:
        info = _owner(self.path)
        beat = _read(self.path / "heartbeat")
        if not self.path.exists():
            return False  # released meanwhile: simply retry
        token = info.get("token") if info else None
        now = time.monotonic()
        if info is not None and info.get("host") == socket.gethostname():
            try:
                if not _pid_alive(int(info["pid"])):
                    self._seen = (token, beat, now)  # what _break may remove
                    return True
            except (KeyError, TypeError, ValueError):
                pass
        if self._seen is None or self._seen[:2] != (token, beat):
            self._seen = (token, beat, now)  # the owner changed or beat: watch afresh
            return False
        return now - self._seen[2] >= self.stale_s

    def _break(self) -> None:
        """Remove a stale lock; a second mutex makes sure only one waiter breaks it."""
        stale = self._seen[0] if self._seen else None
        breaker = self.path.with_name(self.path.name + ".break")
        try:
            os.mkdir(breaker)
        except FileExistsError:
            if time.monotonic() - (self._seen[2] if self._seen else 0.0) > 2 * self.stale_s:
                self._remove(breaker)  # a breaker died within its few milliseconds
            return
        except OSError as exc:
            raise _unwritable(self.path.parent, exc) from None
        try:
            info = _owner(self.path)
            if (info.get("token") if info else None) == stale:
                log.warning("taking over the stale lock %s (owner %s)", self.path, self.holder())
                self._remove(self.path)
        finally:
            self._remove(breaker)
            self._seen = None

    @staticmethod
    def _remove(path: Path) -> None:
        """Rename away (atomic), then delete: nobody ever sees a half-deleted lock."""
        trash = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.gone")
        try:
            os.rename(path, trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    @contextlib.contextmanager
    def held(
        self, *, wait: bool = True, on_wait: Callable[[], bool] | None = None
    ) -> Iterator[bool]:
        """Hold the lock for the ``with`` body; yields False when not taken.

        ``wait=False`` yields False at once when another live process holds it.
        ``on_wait`` is called while waiting; returning True stops waiting (yields False).
        """
        got = self.try_acquire()
        told = False
        while not got and wait:
            if on_wait is not None and on_wait():
                break
            if not told:
                log.info("waiting for %s, which is building (lock %s)", self.holder(), self.path)
                told = True
            time.sleep(min(_POLL_S, self.heartbeat_s))
            got = self.try_acquire()
        try:
            yield got
        finally:
            if got:
                self.release()


def lock_is_live(path: str | os.PathLike[str]) -> bool:
    """Whether lock ``path`` exists and may be held by a live process (no waiting: a lock
    of a dead process on this host is not live; one on another host is assumed live)."""
    lock = Path(path)
    if not lock.is_dir():
        return False
    info = _owner(lock)
    if info is not None and info.get("host") == socket.gethostname():
        try:
            return _pid_alive(int(info["pid"]))
        except (KeyError, TypeError, ValueError):
            return True
    return True


def build_once(
    lock_path: str | os.PathLike[str],
    load: Callable[[], T | None],
    build: Callable[[], T],
    *,
    heartbeat_s: float = HEARTBEAT_S,
    stale_s: float = STALE_S,
) -> T:
    """``load()`` when it finds the finished result, else ``build()`` under the lock.

    Exactly one process per ``lock_path`` builds; the others wait (re-trying ``load``
    while they wait) and return what it published. ``build`` must publish atomically
    (a complete result or nothing) and must not delete a complete result.
    """
    found = load()
    if found is not None:
        return found
    lock = BuildLock(lock_path, heartbeat_s=heartbeat_s, stale_s=stale_s)
    result: list[T] = []

    def done() -> bool:
        got = load()
        if got is not None:
            result.append(got)
        return got is not None

    while True:
        with lock.held(on_wait=done) as mine:
            if result:
                return result[0]
            if mine:
                found = load()
                return found if found is not None else build()


def remove_stale_temporaries(
    folder: str | os.PathLike[str],
    pattern: str,
    locks_of: Callable[[Path], Iterable[Path]],
    keep: Iterable[Path] = (),
) -> int:
    """Delete the temporaries ``folder/pattern`` whose builder is gone; returns bytes freed.

    ``locks_of(temp)`` names the lock(s) a builder of that temporary would hold; a
    temporary is kept while any of them is live (:func:`lock_is_live`) or when it is in
    ``keep`` (the caller's own).
    """
    root = Path(folder)
    own = {Path(p) for p in keep}
    freed = 0
    try:
        temps = sorted(root.glob(pattern))
    except OSError:
        return 0
    for temp in temps:
        if temp in own or any(lock_is_live(lock) for lock in locks_of(temp)):
            continue
        try:
            size = (
                sum(f.stat().st_size for f in temp.rglob("*") if f.is_file())
                if temp.is_dir()
                else temp.stat().st_size
            )
            if temp.is_dir():
                shutil.rmtree(temp)
            else:
                temp.unlink()
        except OSError:
            continue
        freed += size
        log.info("removed the stale temporary %s (%d bytes)", temp, size)
    return freed
