"""Read MegaStyle shards (ours or the official four-column release): iteration and random access."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.data.schema import ALL_COLUMNS, OFFICIAL_COLUMNS, StyleRecord, arrow_schema, record_from_row
from megastyle.data.shards import DEFAULT_ROW_GROUP_SIZE, list_shards


class ShardFormatError(ValueError):
    """A Parquet file is not a MegaStyle shard (missing official columns, incompatible types)."""


def _columns_arg(columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return list(ALL_COLUMNS)
    if isinstance(columns, str):
        raise TypeError("columns must be a sequence of names, not a string")
    unknown = [c for c in columns if c not in ALL_COLUMNS]
    if unknown:
        raise ValueError(f"unknown columns {unknown}; known: {list(ALL_COLUMNS)}")
    return list(columns)


def _image_from_binary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Wrap a plain binary image column as the ``{bytes, path}`` struct."""
    target = arrow_schema(["image"]).field("image").type
    chunks = [
        pa.StructArray.from_arrays(
            [chunk.cast(pa.binary()), pa.nulls(len(chunk), pa.string())],
            fields=list(target),
            mask=chunk.is_null(),
        )
        for chunk in column.chunks
    ]
    return pa.chunked_array(chunks, type=target)


def conform(table: pa.Table, columns: Sequence[str], *, source: str = "table") -> pa.Table:
    """Return ``table`` with exactly ``columns`` in our types; absent optional columns become nulls."""
    schema = arrow_schema(columns)
    arrays = []
    for field in schema:
        if field.name not in table.column_names:
            if field.name in OFFICIAL_COLUMNS:
                raise ShardFormatError(f"{source}: missing required column {field.name!r}")
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)], type=field.type))
            continue
        column = table[field.name]
        try:
            if field.name == "image" and (
                pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
            ):
                column = _image_from_binary(column)
            elif column.type != field.type:
                column = column.cast(field.type)  # e.g. large_string -> string, int32 -> int64
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ShardFormatError(f"{source}: column {field.name!r} has type {column.type}: {exc}") from exc
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


class ShardReader:
    """Read records from a shard directory, one shard file, or a list of shard files.

    ``reader[i]`` reads only the row group holding global row ``i`` (found from the Parquet
    footer), so random access over 1.4M rows never loads a whole shard. Shards may be ours or
    the official four-column ones; our optional columns then read as None.
    """

    def __init__(
        self,
        source: str | Path | Sequence[str | Path],
        *,
        columns: Sequence[str] | None = None,
        cache_row_groups: int = 2,
    ) -> None:
        if isinstance(source, str | Path):
            path = Path(source)
            if not path.exists():
                raise FileNotFoundError(f"no shard directory or file at {path}")
            self.directory: Path | None = path if path.is_dir() else None
            self.shards = list_shards(path) if path.is_dir() else [path]
        else:
            self.directory = None
            self.shards = [Path(p) for p in source]
        self.columns = _columns_arg(columns)
        self._cache_size = max(0, cache_row_groups)
        self._present: list[set[str]] = []
        self._group_starts: list[list[int]] = []  # per shard: first row of each row group
        shard_rows = []
        for shard in self.shards:
            try:
                meta = pq.read_metadata(shard)
            except (OSError, pa.ArrowInvalid) as exc:
                raise ShardFormatError(f"{shard}: not a readable Parquet file: {exc}") from exc
            names = set(meta.schema.to_arrow_schema().names)
            missing = [c for c in OFFICIAL_COLUMNS if c not in names]
            if missing:
                raise ShardFormatError(f"{shard}: missing required columns {missing}")
            self._present.append(names)
            starts, total = [], 0
            for g in range(meta.num_row_groups):
                starts.append(total)
                total += meta.row_group(g).num_rows
            self._group_starts.append(starts)
            shard_rows.append(total)
        self._shard_starts: list[int] = []
        total = 0
        for rows in shard_rows:
            self._shard_starts.append(total)
            total += rows
        self._num_rows = total
        self._shard_rows = shard_rows
        self._files: dict[int, pq.ParquetFile] = {}
        self._cache: OrderedDict[tuple[int, int, tuple[str, ...]], pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    # -- size and layout -------------------------------------------------------------------
    def __len__(self) -> int:
        return self._num_rows

    @property
    def shard_rows(self) -> list[int]:
        """Number of rows in each shard, in shard order."""
        return list(self._shard_rows)

    def locate(self, index: int) -> tuple[int, int, int]:
        """Map a global row index to ``(shard position, row group, row within group)``."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"row index must be an int, got {type(index).__name__}")
        if index < 0:
            index += self._num_rows
        if not 0 <= index < self._num_rows:
            raise IndexError(f"row {index} out of range for {self._num_rows} rows")
        shard = bisect.bisect_right(self._shard_starts, index) - 1
        # Empty shards share a start with the next one; bisect_right already skips them.
        local = index - self._shard_starts[shard]
        starts = self._group_starts[shard]
        group = bisect.bisect_right(starts, local) - 1
        return shard, group, local - starts[group]

    # -- random access ---------------------------------------------------------------------
    def __getitem__(self, index: int) -> StyleRecord:
        return record_from_row(self.get_row(index, columns=list(ALL_COLUMNS)))

    def get_row(self, index: int, columns: Sequence[str] | None = None) -> dict[str, Any]:
        """Return row ``index`` as a dict of ``columns`` (default: the reader's columns)."""
        cols = _columns_arg(columns) if columns is not None else self.columns
        shard, group, offset = self.locate(index)
        table = self._row_group(shard, group, tuple(cols))
        return table.slice(offset, 1).to_pylist()[0]

    def _file(self, shard: int) -> pq.ParquetFile:
        handle = self._files.get(shard)
        if handle is None:
            handle = self._files[shard] = pq.ParquetFile(self.shards[shard])
        return handle

    def _row_group(self, shard: int, group: int, cols: tuple[str, ...]) -> pa.Table:
        key = (shard, group, cols)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            present = [c for c in cols if c in self._present[shard]]
            raw = self._file(shard).read_row_group(group, columns=present)
            table = conform(raw, cols, source=str(self.shards[shard]))
            if self._cache_size:
                self._cache[key] = table
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return table

    # -- sequential access -----------------------------------------------------------------
    def __iter__(self) -> Iterator[StyleRecord]:
        for row in self.iter_rows(columns=list(ALL_COLUMNS)):
            yield record_from_row(row)

    def iter_batches(
        self, columns: Sequence[str] | None = None, batch_size: int = DEFAULT_ROW_GROUP_SIZE
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches of ``columns`` over all shards, in order, in our schema."""
        cols = _columns_arg(columns) if columns is not None else self.columns
        for pos, shard in enumerate(self.shards):
            present = [c for c in cols if c in self._present[pos]]
            handle = pq.ParquetFile(shard)  # own handle: iteration may overlap random access
            try:
                for batch in handle.iter_batches(batch_size=batch_size, columns=present):
                    table = conform(pa.Table.from_batches([batch]), cols, source=str(shard))
                    yield from table.to_batches()
            finally:
                handle.close()

    def iter_rows(self, columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Yield rows as dicts of ``columns`` over all shards, in order."""
        for batch in self.iter_batches(columns):
            yield from batch.to_pylist()

    def read_shard(self, position: int, columns: Sequence[str] | None = None) -> pa.Table:
        """Read whole shard number ``position`` (in ``self.shards`` order), only ``columns``."""
        cols = _columns_arg(columns) if columns is not None else self.columns
        present = [c for c in cols if c in self._present[position]]
        raw = pq.read_table(self.shards[position], columns=present)
        return conform(raw, cols, source=str(self.shards[position]))

    def read_table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Read ``columns`` of all shards into one table (mind memory if that includes images)."""
        cols = _columns_arg(columns) if columns is not None else self.columns
        tables = [self.read_shard(i, cols) for i in range(len(self.shards))]
        return pa.concat_tables(tables) if tables else arrow_schema(cols).empty_table()

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Close open file handles and drop cached row groups."""
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
            self._cache.clear()

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for DataLoader workers: file handles, cache and lock are per process.
        state = self.__dict__.copy()
        state["_files"], state["_cache"], state["_lock"] = {}, OrderedDict(), None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
