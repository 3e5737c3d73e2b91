"""Content digests of caches: written with the cache, checked when it is read.

Small files (reference features, the upsampled set's ``manifest.csv``) carry a SHA-256
of their bytes; a mismatch means "rebuild". Large memory-mapped files (the decoded-image
cache, the DRCDown crop cache) carry one cheap checksum per block (an image, a crop):
the sum of the block's 64-bit words modulo 2**64 (numpy, at memory speed; any change
within one word and all but 2**-64 of random damage change it; blocks whose size is not
a multiple of 8 bytes use CRC-32). The crop cache keeps them in a sidecar
``<file>.sum`` (``.npy`` of uint64), the image cache in its index. Edits that keep a
file's size and modification time are found either way.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from syndr_lightning.utils.errors import DatasetError
from syndr_lightning.utils.io import atomic_open

__all__ = [
    "BlockCheck",
    "block_checksum",
    "block_crcs",
    "crc_file",
    "file_sha256",
    "read_crcs",
    "sha256_bytes",
    "write_crcs",
]


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """Hex SHA-256 of the file's bytes, None when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def crc_file(data_file: str | os.PathLike[str]) -> Path:
    """The sidecar holding ``data_file``'s per-block checksums."""
    p = Path(data_file)
    return p.with_name(p.name + ".sum")


def block_crcs(blocks: np.ndarray) -> np.ndarray:
    """The checksum of each row of ``blocks`` (``[N, ...]`` uint8) as uint64 ``[N]``."""
    flat = np.ascontiguousarray(blocks).reshape(len(blocks), -1)
    if flat.shape[1] % 8 == 0:
        return np.add.reduce(flat.view(np.uint64), axis=1, dtype=np.uint64)
    return np.fromiter((zlib.crc32(row) for row in flat), dtype=np.uint64, count=len(flat))


def block_checksum(block: np.ndarray) -> int:
    """The checksum of one block (its bytes, any shape), as :func:`block_crcs`."""
    return int(block_crcs(np.ascontiguousarray(block).reshape(1, -1))[0])


def write_crcs(data_file: str | os.PathLike[str], sums: np.ndarray) -> None:
    """Write the sidecar of ``data_file`` atomically."""
    with atomic_open(crc_file(data_file), "wb") as fh:
        np.save(fh, np.asarray(sums, dtype=np.uint64), allow_pickle=False)


def read_crcs(data_file: str | os.PathLike[str], n: int) -> np.ndarray | None:
    """The ``n`` checksums of ``data_file``, None when the sidecar is missing or wrong."""
    try:
        sums = np.load(crc_file(data_file), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if sums.dtype != np.uint64 or sums.shape != (n,):
        return None
    return sums


class BlockCheck:
    """Checks each block of a memory-mapped cache against its checksum, once per process."""

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
