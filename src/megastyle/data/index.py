"""Style index: style text -> global row indices, cached next to the shards and keyed on their state."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.data.atomic import atomic_write_table
from megastyle.data.reader import ShardReader
from megastyle.data.schema import parse_id

logger = logging.getLogger(__name__)

# Hidden name: the shard listing never matches it and `datasets` globs skip dot files, so a
# directory holding the cache still loads with load_dataset("parquet", data_dir=...).
INDEX_CACHE_NAME = ".style_index.parquet"
_FORMAT_VERSION = 1
_META_KEY = b"megastyle_style_index"


def shards_fingerprint(shards: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Describe shards by name, size and mtime; any rewrite, addition or removal changes it."""
    out = []
    for shard in shards:
        stat = Path(shard).stat()
        out.append({"name": Path(shard).name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return out


@dataclass
class StyleIndex:
    """Rows grouped by style text; ``label`` is a dense 0..K-1 id in first-appearance order."""

    styles: list[str]  # label -> style text
    style_ids: list[int | None]  # label -> the dataset's style number (style_id column or s{N} id)
    offsets: np.ndarray  # int64, K+1: rows of label k are order[offsets[k]:offsets[k+1]]
    order: np.ndarray  # int64, N: global row indices grouped by label, ascending within a group
    loaded_from_cache: bool = False
    _labels: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._labels = {text: label for label, text in enumerate(self.styles)}
        if len(self.offsets) != len(self.styles) + 1 or int(self.offsets[-1]) != len(self.order):
            raise ValueError("inconsistent style index: offsets do not match styles/rows")

    def __len__(self) -> int:
        return len(self.styles)

    def __contains__(self, style: object) -> bool:
        return style in self._labels

    @property
    def num_rows(self) -> int:
        """Number of indexed rows."""
        return len(self.order)

    def label(self, style: str) -> int:
        """Dense label of ``style`` (KeyError if unknown)."""
        return self._labels[style]

    def style_id(self, style: str) -> int | None:
        """The dataset's own style number for ``style``, if the shards carry one."""
        return self.style_ids[self._labels[style]]

    def rows(self, style: str) -> np.ndarray:
        """Global row indices of ``style``, ascending."""
        return self.rows_for_label(self._labels[style])

    def rows_for_label(self, label: int) -> np.ndarray:
        """Global row indices of dense ``label``, ascending."""
        return self.order[self.offsets[label] : self.offsets[label + 1]]

    def row_labels(self) -> np.ndarray:
        """Dense label of every row (length ``num_rows``), e.g. as contrastive-learning targets."""
        labels = np.empty(self.num_rows, dtype=np.int64)
        labels[self.order] = np.repeat(np.arange(len(self.styles)), np.diff(self.offsets))
        return labels

    def groups(self) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(style, rows)`` for every style, in label order."""
        for label, text in enumerate(self.styles):
            yield text, self.rows_for_label(label)

    # -- persistence -----------------------------------------------------------------------
    def to_table(self, fingerprint: list[dict[str, Any]] | None = None) -> pa.Table:
        """One row per style (style, style_id, rows); the fingerprint goes into schema metadata."""
        rows = pa.LargeListArray.from_arrays(
            pa.array(self.offsets, pa.int64()), pa.array(self.order, pa.int64())
        )
        table = pa.table(
            {
                "style": pa.array(self.styles, pa.string()),
                "style_id": pa.array(self.style_ids, pa.int64()),
                "rows": rows,
            }
        )
        meta = {"version": _FORMAT_VERSION, "fingerprint": fingerprint, "num_rows": self.num_rows}
        return table.replace_schema_metadata({_META_KEY: json.dumps(meta)})

    @classmethod
    def from_table(cls, table: pa.Table, *, loaded_from_cache: bool = False) -> StyleIndex:
        """Inverse of `to_table`."""
        rows = table["rows"].combine_chunks()
        offsets = rows.offsets.to_numpy().astype(np.int64)
        offsets = offsets - offsets[0]  # a sliced ListArray need not start at 0
        order = rows.flatten().to_numpy().astype(np.int64)
        return cls(
            styles=table["style"].to_pylist(),
            style_ids=table["style_id"].to_pylist(),
            offsets=offsets,
            order=order,
            loaded_from_cache=loaded_from_cache,
        )


def _read_cache(path: Path, fingerprint: list[dict[str, Any]]) -> StyleIndex | None:
    """Return the cached index if it exists, parses, and matches ``fingerprint``; else None."""
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[_META_KEY])
        if meta.get("version") != _FORMAT_VERSION or meta.get("fingerprint") != fingerprint:
            return None
        index = StyleIndex.from_table(table, loaded_from_cache=True)
        return index if index.num_rows == meta.get("num_rows") else None
    except Exception as exc:  # a damaged cache must never break reading: rebuild it
        logger.warning("ignoring unreadable style index cache %s: %s", path, exc)
        return None


def _write_cache(path: Path, index: StyleIndex, fingerprint: list[dict[str, Any]]) -> None:
    try:  # readers see the old cache or the new one, never half of one
        atomic_write_table(path, index.to_table(fingerprint))
    except OSError as exc:  # e.g. a read-only dataset mount: the index still works uncached
        logger.warning("could not cache style index at %s: %s", path, exc)


def _dataset_style_id(table: pa.Table, row: int) -> int | None:
    value = table["style_id"][row].as_py()
    if value is not None:
        return int(value)
    try:
        return parse_id(table["id"][row].as_py())[0]
    except ValueError:
        return None


def _build(reader: ShardReader) -> StyleIndex:
    labels_of: dict[str, int] = {}
    styles: list[str] = []
    style_ids: list[int | None] = []
    chunks: list[np.ndarray] = []
    # Shard by shard, only the small columns: memory stays ~one shard of text, never images.
    for position in range(len(reader.shards)):
        table = reader.read_shard(position, ["id", "style", "style_id"])
        style = table["style"].combine_chunks()
        if style.null_count:
            raise ValueError(f"{reader.shards[position]}: {style.null_count} rows have no style")
        encoded = style.dictionary_encode()  # dictionary is in first-appearance order
        local_codes = encoded.indices.to_numpy().astype(np.int64)
        _, first_rows = np.unique(local_codes, return_index=True)
        remap = np.empty(len(encoded.dictionary), dtype=np.int64)
        for code, text in enumerate(encoded.dictionary.to_pylist()):
            label = labels_of.get(text)
            if label is None:
                label = labels_of[text] = len(styles)
                styles.append(text)
                style_ids.append(_dataset_style_id(table, int(first_rows[code])))
            remap[code] = label
        chunks.append(remap[local_codes])
    labels = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    order = np.argsort(labels, kind="stable").astype(np.int64)
    counts = np.bincount(labels, minlength=len(styles))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return StyleIndex(styles=styles, style_ids=style_ids, offsets=offsets, order=order)


def build_style_index(
    source: str | Path | ShardReader,
    *,
    cache: bool = True,
    cache_path: str | Path | None = None,
) -> StyleIndex:
    """Index rows by style; reuse the cache beside the shards unless they changed since it was written."""
    reader = source if isinstance(source, ShardReader) else ShardReader(source)
    # Fingerprint before reading: if shards change mid-build the stored key is stale and the
    # next call rebuilds, rather than trusting an index of a half-old state.
    fingerprint = shards_fingerprint(reader.shards)
    path: Path | None = None
    if cache:
        if cache_path is not None:
            path = Path(cache_path)
        elif reader.directory is not None:
            path = reader.directory / INDEX_CACHE_NAME
    if path is not None:
        cached = _read_cache(path, fingerprint)
        if cached is not None:
            return cached
    index = _build(reader)
    if path is not None:
        _write_cache(path, index, fingerprint)
    return index
