"""Atomic Parquet shard writer (release layout) with per-item rejects."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.data.atomic import fsync_dir, fsync_path, temp_path
from megastyle.data.images import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image, encode_png, probe_image
from megastyle.data.schema import StyleRecord, arrow_schema, record_to_row, validate_record

DEFAULT_ROWS_PER_SHARD = 80_000  # as in tencent/MegaStyle-1.4M
DEFAULT_ROW_GROUP_SIZE = 100  # small groups: one random access reads ~100 images, not a whole shard
REJECTS_FILENAME = "rejects.jsonl"

# Only finished shards match; temp files start with "." and end in ".tmp", so neither this
# pattern nor the `datasets` globs (which skip hidden files) ever pick them up.
_SHARD_RE = re.compile(r"^train-(\d{5,})\.parquet$")
_TEMP_RE = re.compile(r"^\..+\.parquet\.[0-9a-f]{32}\.tmp$")

# Column statistics / dictionaries pay off for the small columns only; on the image column they
# would just cost CPU and footer space.
_SMALL_COLUMNS = ["id", "content", "style", "style_id", "content_id", "style_attributes", "backend", "seed"]
_DICT_COLUMNS = ["content", "style", "style_attributes", "backend"]


def shard_name(index: int) -> str:
    """Return the file name of shard ``index``: ``train-{index:05d}.parquet``."""
    if index < 0:
        raise ValueError(f"shard index must be >= 0, got {index}")
    return f"train-{index:05d}.parquet"


def shard_index(path: str | Path) -> int | None:
    """Return the index encoded in a finished shard's file name, or None for any other file."""
    match = _SHARD_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_shards(directory: str | Path) -> list[Path]:
    """List finished shards in ``directory``, sorted by index (temp files are ignored)."""
    found = []
    for entry in Path(directory).iterdir():
        index = shard_index(entry)
        if index is not None and entry.is_file():
            found.append((index, entry))
    return [path for _, path in sorted(found)]


def cleanup_temp_files(directory: str | Path) -> list[Path]:
    """Delete temp files left by crashed writers; only call when no writer is active in ``directory``."""
    removed = []
    for entry in Path(directory).iterdir():
        if _TEMP_RE.match(entry.name) and entry.is_file():
            entry.unlink()
            removed.append(entry)
    return removed


@dataclass(frozen=True)
class Reject:
    """An item the writer refused, with the reason."""

    item: str
    cause: str

    def to_json(self) -> str:
        """Serialise as one JSON line (no trailing newline)."""
        return json.dumps({"item": self.item, "cause": self.cause}, ensure_ascii=False)


class _AtomicParquet:
    """A Parquet file written under a hidden temp name and renamed into place only when complete."""

    def __init__(self, final: Path, schema: pa.Schema, compression: str) -> None:
        self.final = final
        self.schema = schema
        # Same directory, so os.replace is an atomic rename within one filesystem.
        self.tmp = temp_path(final)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self.tmp,
            schema,
            compression=compression,
            write_statistics=_SMALL_COLUMNS,
            use_dictionary=_DICT_COLUMNS,
        )

    def write_rows(self, rows: list[dict[str, object]], row_group_size: int) -> None:
        """Append ``rows`` as row groups of at most ``row_group_size`` rows."""
        assert self._writer is not None, "file already committed or discarded"
        table = pa.Table.from_pylist(rows, schema=self.schema)
        self._writer.write_table(table, row_group_size=row_group_size)

    def commit(self) -> Path:
        """Close, fsync, and atomically rename to the final name."""
        assert self._writer is not None, "file already committed or discarded"
        self._writer.close()
        self._writer = None
        fsync_path(self.tmp)  # data on disk before the rename makes it visible
        os.replace(self.tmp, self.final)
        fsync_dir(self.final.parent)
        return self.final

    def discard(self) -> None:
        """Drop the temp file; the final name is never touched."""
        writer, self._writer = self._writer, None
        if writer is not None:
            # Already failing; whatever close() raises, the temp file is removed below.
            with contextlib.suppress(Exception):
                writer.close()
        self.tmp.unlink(missing_ok=True)


def write_shard(
    path: str | Path,
    records: Iterable[StyleRecord],
    *,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "snappy",
) -> Path:
    """Atomically write ``records`` (checked with `validate_record`, raising) as one shard at ``path``."""
    if row_group_size <= 0:
        raise ValueError("row_group_size must be positive")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = _AtomicParquet(path, arrow_schema(), compression)
    try:
        buffer: list[dict[str, object]] = []
        for record in records:
            validate_record(record)
            buffer.append(record_to_row(record))
            if len(buffer) == row_group_size:
                out.write_rows(buffer, row_group_size)
                buffer = []
        if buffer:
            out.write_rows(buffer, row_group_size)
        return out.commit()
    except BaseException:
        out.discard()
        raise


class ShardWriter:
    """Write records into ``train-NNNNN.parquet`` shards; each shard appears atomically when complete.

    With ``validate=True`` every image is fully decoded first and bad items (corrupt, truncated,
    too large, wrong size, malformed fields) are collected in ``rejects`` instead of raising,
    so one bad item never costs the rest of the batch. If the ``with`` block raises, the
    unfinished shard is discarded; shards finished before stay valid.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        validate: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        expected_size: tuple[int, int] | None = None,
        normalize_png: bool = False,
        write_rejects: bool = False,
        start_index: int | None = None,
        overwrite: bool = False,
        compression: str = "snappy",
    ) -> None:
        if rows_per_shard <= 0 or row_group_size <= 0:
            raise ValueError("rows_per_shard and row_group_size must be positive")
        if normalize_png and not validate:
            raise ValueError("normalize_png needs validate=True (images must be decoded)")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rows_per_shard = rows_per_shard
        self.row_group_size = row_group_size
        self.validate = validate
        self.max_pixels = max_pixels
        self.expected_size = expected_size
        self.normalize_png = normalize_png
        self.overwrite = overwrite
        self.compression = compression
        self.schema = arrow_schema()
        self.rejects: list[Reject] = []
        self.rejects_path: Path | None = self.directory / REJECTS_FILENAME if write_rejects else None
        self.shards_written: list[Path] = []
        self.rows_committed = 0  # rows inside finished shards
        if start_index is None:
            # Append after existing shards rather than clobbering them.
            existing = [shard_index(p) for p in list_shards(self.directory)]
            start_index = max((i for i in existing if i is not None), default=-1) + 1
        self._next_index = start_index
        self._buffer: list[dict[str, object]] = []
        self._rows_in_shard = 0
        self._file: _AtomicParquet | None = None
        self._rejects_fh: IO[str] | None = None
        self._closed = False

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- public API ------------------------------------------------------------------------
    def write(self, record: StyleRecord) -> bool:
        """Add one record; returns False if it was rejected (only with ``validate=True``)."""
        if self._closed:
            raise RuntimeError("ShardWriter is closed")
        checked = self._check(record)
        if checked is None:
            return False
        if self._file is None:
            self._open_shard()
        self._buffer.append(record_to_row(checked))
        self._rows_in_shard += 1
        if len(self._buffer) >= self.row_group_size:
            self._flush_row_group()
        if self._rows_in_shard >= self.rows_per_shard:
            self._finish_shard()
        return True

    def write_many(self, records: Iterable[StyleRecord]) -> int:
        """Add records; returns how many were accepted."""
        return sum(1 for record in records if self.write(record))

    @property
    def rows_accepted(self) -> int:
        """Rows accepted so far, including those of the shard not yet finished."""
        return self.rows_committed + self._rows_in_shard

    def close(self) -> None:
        """Finish the current shard (if any rows) and release files; idempotent."""
        if self._closed:
            return
        try:
            if self._file is not None:
                self._finish_shard()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._close_rejects()

    def abort(self) -> None:
        """Discard the unfinished shard (finished shards are kept) and close."""
        self._buffer.clear()
        self._rows_in_shard = 0
        file, self._file = self._file, None
        if file is not None:
            file.discard()
        self._closed = True
        self._close_rejects()

    # -- internals -------------------------------------------------------------------------
    def _check(self, record: StyleRecord) -> StyleRecord | None:
        """Return the record to store (maybe re-encoded) or None after recording a reject."""
        try:
            validate_record(record)
        except ValueError as exc:
            if not self.validate:
                raise
            self._reject(getattr(record, "id", None), str(exc))
            return None
        if not self.validate:
            return record
        try:
            info = probe_image(record.image, item=record.id, max_pixels=self.max_pixels)
            image = decode_image(record.image, item=record.id, max_pixels=self.max_pixels)
        except ImageDecodeError as exc:
            self._reject(record.id, exc.cause)
            return None
        if self.expected_size is not None and image.size != tuple(self.expected_size):
            w, h = self.expected_size
            self._reject(record.id, f"image is {image.width}x{image.height}, expected {w}x{h}")
            return None
        if self.normalize_png and (info.format != "PNG" or info.mode != "RGB"):
            # Readers of the release expect RGB PNG bytes; store the decoded RGB instead.
            return replace(record, image=encode_png(image))
        return record

    def _reject(self, item: object, cause: str) -> None:
        reject = Reject(item=item if isinstance(item, str) and item else "<unknown>", cause=cause)
        self.rejects.append(reject)
        if self.rejects_path is not None:
            if self._rejects_fh is None:
                self._rejects_fh = self.rejects_path.open("a", encoding="utf-8")
            self._rejects_fh.write(reject.to_json() + "\n")
            self._rejects_fh.flush()  # keep the record even if the process dies later

    def _close_rejects(self) -> None:
        if self._rejects_fh is not None:
            self._rejects_fh.close()
            self._rejects_fh = None

    def _open_shard(self) -> None:
        final = self.directory / shard_name(self._next_index)
        if final.exists() and not self.overwrite:
            raise FileExistsError(f"{final} exists (pass overwrite=True or another start_index)")
        self._file = _AtomicParquet(final, self.schema, self.compression)

    def _flush_row_group(self) -> None:
        if self._buffer and self._file is not None:
            # One write per group: ParquetWriter never merges separate writes into one row group.
            self._file.write_rows(self._buffer, self.row_group_size)
            self._buffer.clear()

    def _finish_shard(self) -> None:
        self._flush_row_group()
        assert self._file is not None
        self.shards_written.append(self._file.commit())
        self._file = None
        self.rows_committed += self._rows_in_shard
        self._rows_in_shard = 0
        self._next_index += 1
