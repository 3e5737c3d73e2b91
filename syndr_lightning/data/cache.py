"""Decoded-image cache: every image decoded once into one memory-mapped uint8 file.

Epochs then read pixels from the page cache instead of re-decoding PNG/BMP/JPEG::

    cache = ImageCache.open_or_build(manifest["path"], cache_dir)
    img = cache.get(path)  # HxWx3 uint8 RGB, identical to decoding the file

Layout in ``cache_dir``: ``imgcache-<key>.json`` (index: paths, shapes, offsets, each
file's identity = name, size, mtime, and each image's XXH3-64 digest) and ``imgcache-<key>-<ident>.u8`` (the flat pixel buffer,
images of any size back to back). ``<key>`` hashes the list of paths, ``<ident>`` the
files' identities, so a changed file leads to a rebuild. Both files are written
atomically; the index last, so a reader never sees an index without its data. A reused
cache is verified whole when opened (every image against its digest: edits that keep
the file's size and mtime are found) and rebuilt when any image differs.
The memmap is opened lazily in each process, so a cache object can be handed to
DataLoader worker processes (fork or spawn). Runs sharing a key (processes or hosts on
one filesystem) build it once: the builder holds ``.imgcache-<key>.lock`` and removes
killed builds' temporaries first; the others wait and reuse it (``utils.locking``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from syndr_lightning.utils.errors import DatasetError, InputError
from syndr_lightning.utils.images import image_size, read_rgb
from syndr_lightning.utils.integrity import BlockCheck, block_checksum
from syndr_lightning.utils.io import atomic_open, atomic_path, file_identity
from syndr_lightning.utils.locking import build_once, remove_stale_temporaries

# 2: file identities are utils.io.file_identity strings; 3: checksums; 4: XXH3-64 digests
CACHE_VERSION = 4
_CHUNK = 64
log = logging.getLogger(__name__)


def _identity(paths: list[str]) -> list[str]:
    """``utils.io.file_identity`` of each file; a missing file raises a DatasetError naming it."""
    try:
        return [file_identity(p) for p in paths]
    except DatasetError as exc:
        raise DatasetError(f"image cache: {exc}") from None


def _digest(parts: Iterable[str]) -> str:
    h = hashlib.sha1()
    for part in parts:
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def decode_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file into an HxWx3 uint8 RGB array (DatasetError if unreadable)."""
    return read_rgb(path)


def clean_stale_temporaries(folder: Path, key: str) -> int:
    """Delete the image-cache temporaries of killed builds in ``folder``; bytes freed.

    Called while holding ``key``'s lock, so ``key``'s temporaries are all stale; another
    key's are kept while its lock is live.
    """
    prefix = ".imgcache-"

    def locks_of(temp: Path) -> list[Path]:
        other = temp.name[len(prefix) : len(prefix) + 16]
        return [] if other == key else [folder / f".imgcache-{other}.lock"]

    return remove_stale_temporaries(folder, f"{prefix}*.tmp", locks_of)


class ImageCache:
    """A read-only, memory-mapped store of decoded images; build with :meth:`open_or_build`."""

    def __init__(self, index_file: Path, index: dict[str, Any], built: bool = False) -> None:
        self.index_file = index_file
        self.data_file = index_file.parent / index["data_file"]
        self.paths: list[str] = list(index["paths"])
        self._shapes = np.asarray(index["shapes"], dtype=np.int64).reshape(-1, 2)
        self._offsets = np.asarray(index["offsets"], dtype=np.int64)
        self._total = int(index["total_bytes"])
        self._lookup = {p: i for i, p in enumerate(self.paths)}
        # Each image's checksum, written with it and checked on its first read per process.
        sums = np.asarray([int(v) for v in index["checksums"]], dtype=np.uint64)
        self._check = BlockCheck(self.data_file, sums, "image cache")
        self.built = built  # True when this call decoded the images
        self._mm: np.memmap | None = None
        self._pid = -1

    # ------------------------------------------------------------------ build / open
    @classmethod
    def open_or_build(
        cls,
        paths: Iterable[str | os.PathLike[str]],
        cache_dir: str | os.PathLike[str],
        progress: bool = True,
    ) -> ImageCache:
        """Open the cache of ``paths`` in ``cache_dir``, (re)building it when missing or stale.

        Stale means: any file's size or modification time differs from when it was
        cached, or the cache files are incomplete or unreadable.
        """
        unique = list(dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths))
        if not unique:
            raise InputError("image cache: no paths given; pass the manifest's 'path' column")
        folder = Path(cache_dir).expanduser()
        key = _digest(unique)
        ident = _identity(unique)
        ident_key = _digest(ident)
        index_file = folder / f"imgcache-{key}.json"

        def load() -> ImageCache | None:
            index = cls._read_index(index_file, unique, ident)
            if index is None:
                return None
            cache = cls(index_file, index)
            bad = cache.first_bad_block()
            if bad is None:
                return cache
            log.warning(
                "image cache %s is corrupt (image %d, %s, does not match its digest); "
                "it is rebuilt",
                cache.data_file,
                bad,
                cache.paths[bad],
            )
            index_file.unlink(missing_ok=True)  # never reused, by this run or another
            return None

        def build() -> ImageCache:
            old = cls._read_index(index_file, None, None)
            freed = clean_stale_temporaries(folder, key)
            data_name = f"imgcache-{key}-{ident_key}.u8"
            index = cls._build(unique, ident, folder, data_name, progress, freed)
            with atomic_open(index_file, "w", encoding="utf-8") as fh:
                json.dump(index, fh)
            if old is not None and old.get("data_file") != index["data_file"]:
                (folder / str(old["data_file"])).unlink(missing_ok=True)
            return cls(index_file, index, built=True)

        # One builder per key across processes and hosts; the others wait and reuse it.
        return build_once(folder / f".imgcache-{key}.lock", load, build)

    @staticmethod
    def _read_index(
        index_file: Path, paths: list[str] | None, ident: list[str] | None
    ) -> dict[str, Any] | None:
        """The index when it is valid (and, if given, matches ``paths`` and ``ident``)."""
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(index, dict) or index.get("version") != CACHE_VERSION:
            return None
        if paths is None:
            return index
        try:
            data = index_file.parent / index["data_file"]
            same = (
                index["paths"] == paths
                and index["identity"] == ident
                and len(index["checksums"]) == len(paths)
                and data.is_file()
                and data.stat().st_size == int(index["total_bytes"])
            )
        except (KeyError, TypeError, ValueError):
            return None
        return index if same else None

    @staticmethod
    def _build(
        paths: list[str],
        ident: list[str],
        folder: Path,
        data_name: str,
        progress: bool,
        freed: int = 0,
    ) -> dict[str, Any]:
        shapes: list[tuple[int, int]] = []
        for p in paths:  # header pass: sizes without decoding, to check the disk space
            shapes.append(image_size(p))
        sizes = np.array([h * w * 3 for h, w in shapes], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        total = int(sizes.sum())
        free = shutil.disk_usage(folder).free
        if total > free:
            cleaned = f" (after removing {freed / 2**30:.2f} GiB of stale temporaries)"
            raise DatasetError(
                f"image cache: needs {total / 2**30:.2f} GiB in {str(folder)!r} but only "
                f"{free / 2**30:.2f} GiB are free{cleaned if freed else ''}; choose another "
                f"cache_dir or disable the cache"
            )
        from syndr_lightning.utils.progress import progress as show_progress

        crcs: list[int] = []
        with (
            atomic_path(folder / data_name) as tmp,
            open(tmp, "wb") as fh,
            show_progress(
                f"caching {len(paths)} images", len(paths), enabled=progress, transient=True
            ) as bar,
        ):
            for i, p in enumerate(paths):
                arr = decode_rgb(p)
                if arr.shape[:2] != shapes[i]:
                    raise DatasetError(
                        f"image cache: {p!r} decoded to {arr.shape[:2]} but its header says "
                        f"{shapes[i]}; was it modified during the build?"
                    )
                raw = np.ascontiguousarray(arr)
                crcs.append(block_checksum(raw))
                fh.write(raw.tobytes())
                if i % _CHUNK == _CHUNK - 1 or i == len(paths) - 1:
                    bar.update(completed=i + 1)
        return {
            "version": CACHE_VERSION,
            "data_file": data_name,
            "paths": paths,
            "identity": list(ident),
            "shapes": [list(s) for s in shapes],
            "offsets": offsets.tolist(),
            "total_bytes": total,
            "checksums": [str(c) for c in crcs],  # uint64 as text: JSON readers lose bits
        }

    # ------------------------------------------------------------------ reading
    def _memmap(self) -> np.memmap:
        pid = os.getpid()
        if self._mm is None or self._pid != pid:  # first use, or a forked worker
            self._mm = np.memmap(self.data_file, dtype=np.uint8, mode="r", shape=(self._total,))
            self._pid = pid
        return self._mm

    def first_bad_block(self) -> int | None:
        """The first image whose bytes differ from the digest written with it, or None."""
        mm = self._memmap()
        for i in range(len(self.paths)):
            h, w = (int(v) for v in self._shapes[i])
            start = int(self._offsets[i])
            if block_checksum(mm[start : start + h * w * 3]) != int(self._check.crcs[i]):
                return i
        return None

    def __len__(self) -> int:
        return len(self.paths)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and (
            os.path.abspath(os.fspath(path)) in self._lookup
        )

    def get(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Pixels of ``path`` as a writable HxWx3 uint8 RGB array (a copy)."""
        i = self._lookup.get(os.path.abspath(os.fspath(path)))
        if i is None:
            raise InputError(
                f"image cache: {str(path)!r} is not in the cache {str(self.index_file)!r} "
                f"({len(self)} images); rebuild it with open_or_build over all paths"
            )
        return self[i]

    def __getitem__(self, i: int) -> np.ndarray:
        """Pixels of the ``i``-th cached image (in the order given at build time)."""
        if not -len(self) <= i < len(self):
            raise InputError(f"image cache: index {i} out of range for {len(self)} images")
        h, w = (int(v) for v in self._shapes[i])
        start = int(self._offsets[i])
        block = np.array(self._memmap()[start : start + h * w * 3])
        try:
            self._check.check(i, block, self.paths[i])
        except DatasetError:
            # Never reused: without its index the next run rebuilds the cache.
            self.index_file.unlink(missing_ok=True)
            raise
        return block.reshape(h, w, 3)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_mm"] = None  # each process maps the file itself
        state["_pid"] = -1
        return state
