"""Read what an offline W&B run recorded: its ``run-<id>.wandb`` file, record by record.

The file is wandb's transaction log: a 7-byte header (``:W&B``, magic, version), then
LevelDB-log framed chunks (32 KiB blocks; each chunk: CRC-32, length, type FULL / FIRST /
MIDDLE / LAST) whose payloads are ``wandb.proto.wandb_internal_pb2.Record`` messages.
wandb >= 0.2x writes it from its Go core and no longer ships a Python reader, so the
framing is decoded here and every record is parsed with wandb's own protobuf classes.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32 * 1024
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(raw: bytes) -> Iterator[bytes]:
    if raw[:4] != b":W&B":
        raise ValueError("not a W&B transaction log (no ':W&B' header)")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(raw):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer: padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", raw[pos : pos + _HEADER])
        data = raw[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 0 and length == 0:  # zero padding to the end of the block
            pos += left - _HEADER
            continue
        if zlib.crc32(bytes([kind]) + data) & 0xFFFFFFFF != crc:
            raise ValueError(f"corrupt W&B record at byte {pos}: CRC mismatch")
        if kind == _FULL:
            yield data
        elif kind == _FIRST:
            pending = data
        elif kind == _MIDDLE:
            pending += data
        elif kind == _LAST:
            yield pending + data
            pending = b""


def records(path: Path) -> Iterator[Any]:
    """Every ``Record`` of a ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    for data in _payloads(Path(path).read_bytes()):
        record = pb.Record()
        record.ParseFromString(data)
        yield record


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def _put(target: dict[str, Any], item: Any) -> None:
    """Store a history/summary item: a nested key (``[name, field]``) as ``{name: {field:
    value}}``, else ``{key: value}``."""
    value = json.loads(item.value_json)
    if len(item.nested_key) > 1:
        node = target.setdefault(item.nested_key[0], {})
        if isinstance(node, dict):
            node["/".join(item.nested_key[1:])] = value
    else:
        target[_key(item)] = value


@dataclass
class OfflineRun:
    """The parts of an offline run the tests look at."""

    folder: Path
    name: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    configs: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    artifacts: list[Any] = field(default_factory=list)
    exit_code: int | None = None  # None: the run's exit record is not written (yet)

    @property
    def files_dir(self) -> Path:
        return self.folder / "files"

    def history_keys(self) -> set[str]:
        return {k for row in self.history for k in row}


def read_offline_run(folder: Path) -> OfflineRun:
    """Parse ``<folder>/run-<id>.wandb`` (``folder``: an ``offline-run-*`` directory)."""
    (log,) = Path(folder).glob("run-*.wandb")
    run = OfflineRun(Path(folder))
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.name, run.group = record.run.display_name, record.run.run_group
            run.tags = list(record.run.tags)
        elif kind == "config":
            update = {_key(u): json.loads(u.value_json) for u in record.config.update}
            run.configs.append({k: v for k, v in update.items() if k != "_wandb"})
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _put(row, item)
            run.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _put(run.summary, item)
        elif kind == "metric":
            name = record.metric.name or record.metric.glob_name
            run.metrics[name] = record.metric
        elif kind == "files":
            run.files += [f.path for f in record.files.files]
        elif kind == "artifact":
            run.artifacts.append(record.artifact)
        elif kind == "exit":
            run.exit_code = int(record.exit.exit_code)
    return run
