"""Content digests of caches: written with the cache, checked when it is read.

Small files (reference features, the upsampled set's ``manifest.csv``, a generated set's
``labels.csv``) carry a SHA-256 of their bytes; a mismatch means "rebuild". Large
memory-mapped files (the decoded-image cache, the DRCDown crop cache) and the upsampled
set's images carry one 64-bit XXH3 digest per block (an image, a crop, a file; the
``xxhash`` library, several GB/s): a flipped bit, reordered words or bytes moved within
a block all change it. The crop cache keeps them in a sidecar ``<file>.sum`` (``.npy`` of
uint64, :data:`DIGEST_MAGIC` first), the image cache in its index. Edits that keep a
file's size and modification time are found either way; a sidecar that cannot be read
(damaged, truncated, an older format) means "rebuild", never an error.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from syndr_lightning.utils.errors import DatasetError
from syndr_lightning.utils.io import atomic_open

__all__ = [
    "DIGEST_MAGIC",
    "BlockCheck",
    "block_checksum",
    "block_crcs",
    "crc_file",
    "file_digest",
    "file_sha256",
    "read_crcs",
    "sha256_bytes",
    "write_crcs",
]


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _file_hex(path: str | os.PathLike[str], h: Any) -> str | None:
    """``h`` (a hashlib-like object) fed the file's bytes, as hex; None when unreadable."""
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return str(h.hexdigest())


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """Hex SHA-256 of the file's bytes, None when it cannot be read."""
    return _file_hex(path, hashlib.sha256())


def crc_file(data_file: str | os.PathLike[str]) -> Path:
    """The sidecar holding ``data_file``'s per-block checksums."""
    p = Path(data_file)
    return p.with_name(p.name + ".sum")


#: First entry of a ``.sum`` sidecar: names the digest (XXH3-64, version 1), so sidecars of
#: an older format (sums of 64-bit words, no header) read as missing and are rebuilt.
DIGEST_MAGIC = np.uint64(int.from_bytes(b"xxh3-64\x01", "little"))


def block_crcs(blocks: np.ndarray) -> np.ndarray:
    """The XXH3-64 digest of each row of ``blocks`` (``[N, ...]`` uint8) as uint64 ``[N]``."""
    flat = np.ascontiguousarray(blocks).reshape(len(blocks), -1)
    return np.fromiter(
        (xxhash.xxh3_64_intdigest(row) for row in flat), dtype=np.uint64, count=len(flat)
    )


def block_checksum(block: np.ndarray) -> int:
    """The digest of one block (its bytes, any shape), as :func:`block_crcs`."""
    return int(xxhash.xxh3_64_intdigest(np.ascontiguousarray(block).reshape(-1)))


def file_digest(path: str | os.PathLike[str]) -> str | None:
    """Hex XXH3-64 digest of the file's bytes, None when it cannot be read."""
    return _file_hex(path, xxhash.xxh3_64())


def write_crcs(data_file: str | os.PathLike[str], sums: np.ndarray) -> None:
    """Write the sidecar of ``data_file`` atomically (:data:`DIGEST_MAGIC`, then the digests)."""
    table = np.concatenate([[DIGEST_MAGIC], np.asarray(sums, dtype=np.uint64)])
    with atomic_open(crc_file(data_file), "wb") as fh:
        np.save(fh, table.astype(np.uint64), allow_pickle=False)


def read_crcs(data_file: str | os.PathLike[str], n: int) -> np.ndarray | None:
    """The ``n`` digests of ``data_file``; None when the sidecar is missing, damaged,
    unreadable or of another format (the cache is then rebuilt)."""
    try:
        table = np.load(crc_file(data_file), allow_pickle=False)
    except Exception:  # a damaged .npy header raises anything from OSError to TokenError
        return None
    if not isinstance(table, np.ndarray) or table.dtype != np.uint64 or table.shape != (n + 1,):
        return None
    if table[0] != DIGEST_MAGIC:
        return None
    return table[1:]


class BlockCheck:
    """Checks each block of a memory-mapped cache against its digest, once per process."""

    def __init__(self, data_file: str | os.PathLike[str], crcs: np.ndarray, what: str) -> None:
        self.data_file = Path(data_file)
        self.crcs = np.asarray(crcs, dtype=np.uint64)
        self.what = what
        self._seen = np.zeros(len(self.crcs), dtype=bool)
        self._pid = os.getpid()

    def check(self, i: int, block: np.ndarray, name: str = "") -> None:
        """Raise DatasetError (one line) when block ``i`` differs from what was written."""
        if self._pid != os.getpid():  # a forked worker checks for itself
            self._seen = np.zeros(len(self.crcs), dtype=bool)
            self._pid = os.getpid()
        if self._seen[i]:
            return
        if block_checksum(block) != int(self.crcs[i]):
            raise DatasetError(
                f"{self.what} {str(self.data_file)!r} is corrupt: block {i}"
                f"{f' ({name})' if name else ''} does not match the checksum written with it; "
                "the cache has been invalidated - rerun to rebuild it"
            )
        self._seen[i] = True

    def bad_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """Indices of the blocks of ``blocks`` (``[N, ...]``) whose checksums differ."""
        return np.flatnonzero(block_crcs(blocks) != self.crcs)
