"""Atomic files: every file a run keeps is written under a hidden temp name beside it, then renamed.

A reader (or a resumed run) sees the old file or the new one, never half of one. The temp name
``.{name}.{32 hex}.tmp`` is hidden, so shard globs and the ``datasets`` library skip it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def temp_path(path: Path) -> Path:
    """A hidden, unique temp name beside ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def fsync_path(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (not supported everywhere: best effort)."""
    with contextlib.suppress(OSError):
        fsync_path(directory)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, fsync it and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        fsync_path(tmp)  # data on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def trim_jsonl_log(path: str | os.PathLike[str], last_step: int) -> list[dict[str, Any]]:
    """Keep the records of a training log up to ``last_step`` (a resumed run redoes the later ones); returns them."""
    path = Path(path)
    if not path.is_file():
        return []
    kept: list[str] = []
    records: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a kill cut short
        if not isinstance(record, dict) or record.get("step", 0) <= last_step:
            kept.append(line)
            records.append(record)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return records


def atomic_write_table(path: str | os.PathLike[str], table: pa.Table, **options: Any) -> Path:
    """Write a pyarrow table as Parquet atomically (``options`` go to ``pq.write_table``)."""
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, **options))
