"""Images inside container files, read on demand: a row of a Parquet file, a member of an uncompressed tar.

Pool readers record where an image is (``PoolItem.path`` + ``PoolItem.member``) instead of copying its
bytes, so an ingested pool of millions of images is a small table of references. Workers read an image
only when they caption it. A Parquet reference names the row within the file and the column;
consecutive rows of one row group cost one read (a small per-process cache keeps recent groups).
A tar reference is the byte offset and size of the member's data.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_CACHE_GROUPS = 4
_cache: OrderedDict[tuple[str, int, str], pa.Array] = OrderedDict()
_starts: dict[str, list[int]] = {}
_lock = threading.Lock()


def parquet_member(row: int, column: str) -> str:
    """The reference of row ``row`` (0-based, within the file) of image column ``column``."""
    return f"parquet:{row}:{column}"


def tar_member(offset: int, size: int) -> str:
    """The reference of a tar member's data at byte ``offset``, ``size`` bytes long."""
    return f"tar:{offset}:{size}"


def read_member(path: str, member: str) -> bytes:
    """The bytes ``member`` names inside the file at ``path``; ``ValueError`` when it is not there."""
    kind, _, rest = member.partition(":")
    if kind == "tar":
        offset, size = (int(x) for x in rest.split(":"))
        with Path(path).open("rb") as handle:
            handle.seek(offset)
            data = handle.read(size)
        if len(data) != size:
            raise ValueError(
                f"{path}: tar member at byte {offset} is cut short ({len(data)} of {size} bytes)"
            )
        return data
    if kind == "parquet":
        row_text, _, column = rest.partition(":")
        return _parquet_image(path, int(row_text), column)
    raise ValueError(f"unknown member reference {member!r} in {path}")


def _parquet_image(path: str, row: int, column: str) -> bytes:
    with _lock:
        starts = _starts.get(path)
        if starts is None:
            meta = pq.read_metadata(path)
            starts, total = [], 0
            for group in range(meta.num_row_groups):
                starts.append(total)
                total += meta.row_group(group).num_rows
            starts.append(total)
            _starts[path] = starts
    if not 0 <= row < starts[-1]:
        raise ValueError(f"{path}: row {row} is outside the file's {starts[-1]} rows")
    group = bisect.bisect_right(starts, row) - 1  # per item: a scan of every row group would not do
    key = (path, group, column)
    with _lock:
        values = _cache.get(key)
        if values is not None:
            _cache.move_to_end(key)
    if values is None:
        values = pq.ParquetFile(path).read_row_group(group, columns=[column]).column(0).combine_chunks()
        with _lock:
            _cache[key] = values
            while len(_cache) > _CACHE_GROUPS:
                _cache.popitem(last=False)
    value: Any = values[row - starts[group]].as_py()
    data = value.get("bytes") if isinstance(value, dict) else value
    if not data:
        raise ValueError(f"{path}: row {row} has no image bytes in column {column!r}")
    return bytes(data)
