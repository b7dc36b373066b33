"""Parquet pool reader: MegaStyle shards (via ``ShardReader``) or any table with an image column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.curate.items import PoolItem
from megastyle.curate.members import parquet_member
from megastyle.curate.pools.rows import caption_columns, file_item, pick, shard_prefix, with_caption
from megastyle.curate.pools.spec import DEFAULT_IMAGE_COLUMNS, Entry, PoolSpec
from megastyle.data import ALL_COLUMNS, OFFICIAL_COLUMNS, Reject, ShardReader


def _parquet_rows(path: Path, spec: PoolSpec) -> tuple[Iterator[dict[str, Any]], str, tuple[str, ...]]:
    """Row dicts of one file (via ShardReader for MegaStyle shards), its image column and caption columns."""
    schema = pq.read_schema(path)
    megastyle_captions = caption_columns(spec, megastyle_shard=True)
    if (
        all(c in schema.names for c in OFFICIAL_COLUMNS)
        and spec.image_column in (None, "image")
        and all(c in ALL_COLUMNS for c in megastyle_captions)
    ):
        captions = tuple(c for c in megastyle_captions if c in schema.names)
        reader = ShardReader([path], columns=["id", "image", *captions])
        return reader.iter_rows(), "image", captions
    candidates = (spec.image_column,) if spec.image_column else DEFAULT_IMAGE_COLUMNS
    image_column = next((c for c in candidates if c in schema.names), None)
    if image_column is None:
        raise ValueError(f"no image column (looked for {list(candidates)}; has {schema.names})")
    kind = schema.field(image_column).type
    usable = pa.types.is_struct(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
    if not usable:
        raise ValueError(
            f"image column {image_column!r} has type {kind}; expected struct{{bytes, path}} or binary"
        )
    captions = tuple(c for c in caption_columns(spec) if c in schema.names)
    columns = [image_column, *captions, *(["id"] if "id" in schema.names else [])]
    handle = pq.ParquetFile(path)
    rows = (
        row for batch in handle.iter_batches(batch_size=256, columns=columns) for row in batch.to_pylist()
    )
    return rows, image_column, captions


def iter_parquet_file(path: Path, spec: PoolSpec) -> Iterator[Entry]:
    """Entries of one Parquet file; an unreadable file (or page) ends it with one Reject."""
    prefix = shard_prefix(spec, path, (".parquet",))
    try:
        rows, image_column, captions = _parquet_rows(path, spec)
        for index, row in enumerate(rows):
            row_id = row.get("id")
            item_id = (
                f"{prefix}/{row_id}"
                if isinstance(row_id, str | int) and row_id != ""
                else f"{prefix}/{index}"
            )
            yield _parquet_item(item_id, row, index, image_column, captions, path, spec)
    except (OSError, ValueError, pa.ArrowException) as exc:  # unreadable file or a corrupt page mid-file
        yield Reject(prefix, f"{path}: unreadable Parquet: {type(exc).__name__}: {exc}")


def _parquet_item(
    item_id: str,
    row: dict[str, Any],
    index: int,
    column: str,
    captions: tuple[str, ...],
    path: Path,
    spec: PoolSpec,
) -> Entry:
    value = row.get(column)
    data, ref = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (value, None)
    if data:
        # A reference, not a copy: the bytes are read again from this row when the item is captioned.
        item: Entry = PoolItem(item_id, str(path), path=str(path), member=parquet_member(index, column))
    elif ref and not data:
        # HF Image struct with only a path: a file next to the shard (or absolute).
        item = file_item(item_id, path.parent / ref, str(path))
    else:
        return Reject(
            item_id, f"{path.name}: {'zero-byte' if data == b'' else 'no'} image in column {column!r}"
        )
    caption_column, caption = pick({c: row.get(c) for c in captions}, captions)
    where = f"{path.name} column {caption_column}"
    return item if isinstance(item, Reject) else with_caption(item, caption, where, spec)
