"""Decode every image once before fitting, so a damaged file stops the run at once.

A truncated or corrupt image otherwise surfaces mid-epoch (or in the test phase, after
hours of training). :func:`check_images` decodes each file fully (threads: Pillow
releases the GIL while decoding) and remembers a set that decoded cleanly by the files'
identities (path, size, mtime), so later runs on the same data skip the work.
:class:`ImageCheck` runs it in ``setup("fit")``: after the datamodule has read its
manifests, before the first batch; DDP ranks check one shard each.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from syndr_lightning.utils.cpus import usable_cpus
from syndr_lightning.utils.errors import DatasetError
from syndr_lightning.utils.images import verify_image

__all__ = ["ImageCheck", "check_images"]


def _identity_digest(paths: Sequence[str]) -> str | None:
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            return None  # a missing file: let the decode report it
        h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def check_images(
    paths: Sequence[str], record_dir: str | os.PathLike[str] | None = None, workers: int = 0
) -> tuple[int, str | None]:
    """Decode every image of ``paths``; return ``(n_bad, first problem or None)``.

    With ``record_dir``, a set that decoded cleanly is remembered there (an empty file
    named by the digest of the files' identities) and not decoded again.
    """
    unique = list(dict.fromkeys(str(p) for p in paths))
    if not unique:
        return 0, None
    digest = _identity_digest(unique)
    record = Path(record_dir) / f"{digest}.ok" if (record_dir and digest) else None
    if record is not None and record.is_file():
        return 0, None
    n = workers or min(8, usable_cpus())
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        problems = [why for why in pool.map(verify_image, unique) if why is not None]
    if problems:
        return len(problems), problems[0]
    if record is not None:
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.touch()
        except OSError:
            pass  # a read-only cache: check again next time
    return 0, None


class ImageCheck(Callback):
    """Before fitting, every image of the datamodule's manifests must decode."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.record_dir = Path(str(cache_dir)) / "checked_images" if cache_dir else None

    @staticmethod
    def _paths(dm: Any) -> list[str]:
        tables = [getattr(dm, "train_manifest", None), getattr(dm, "val_manifest", None)]
        tables += list((getattr(dm, "test_manifests", None) or {}).values())
        out: list[str] = []
        for t in tables:
            if t is not None and "path" in t:
                out.extend(str(p) for p in t["path"])
        return sorted(set(out))

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Decode this rank's share of the images; every rank stops if any fails."""
        if stage != "fit" or trainer.datamodule is None:
            return
        paths = self._paths(trainer.datamodule)
        shard = paths[trainer.global_rank :: max(1, trainer.world_size)]
        n_bad, first = check_images(shard, self.record_dir)
        failed = trainer.strategy.reduce_boolean_decision(n_bad > 0, all=False)
        if first is not None:
            raise DatasetError(
                f"{n_bad} of {len(shard)} images cannot be used (checked before fitting); "
                f"first: {first}"
            )
        if failed:
            raise DatasetError(
                "another process found images that cannot be used (checked before fitting); "
                "see its error"
            )
