"""Helpers every pool reader shares: caption checks, row columns, file items and shard naming."""

from __future__ import annotations

import csv
import json
import stat
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from megastyle.curate.items import PoolItem
from megastyle.curate.pools.spec import DEFAULT_CAPTION_COLUMNS, DEFAULT_IMAGE_COLUMNS, Entry, PoolSpec
from megastyle.data import Reject


# -- captions -----------------------------------------------------------------------------------
def _caption(value: object, where: str) -> tuple[str | None, str | None]:
    """(caption, None) for usable text; (None, cause) for empty or non-text values; None stays None."""
    if value is None:
        return None, None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None, f"{where}: caption is not UTF-8 text"
    if not isinstance(value, str):
        return None, f"{where}: caption is not text ({type(value).__name__})"
    text = value.strip()
    return (text, None) if text else (None, f"{where}: empty caption")


def pick(row: dict[str, Any], columns: Sequence[str]) -> tuple[str | None, object]:
    """(column, value) of the first of ``columns`` present in ``row``; (None, None) when none is."""
    for column in columns:
        if column in row:
            return column, row[column]
    return None, None


def with_caption(item: PoolItem, value: object, where: str, spec: PoolSpec) -> Entry:
    """``item`` with its checked caption, or a Reject for a bad (or, if required, missing) caption."""
    caption, cause = _caption(value, where)
    if cause:
        return Reject(item.id, cause)
    if caption is None and spec.require_caption:
        return Reject(item.id, f"{where}: no caption (require_caption is set)")
    return replace(item, caption=caption)


def file_item(item_id: str, path: Path, source: str) -> Entry:
    """A path item, or a Reject for a missing / zero-byte / non-regular file (checked with one stat)."""
    try:
        info = path.stat()
    except OSError:
        return Reject(item_id, f"missing image file {path}")
    if not stat.S_ISREG(info.st_mode):
        return Reject(item_id, f"{path} is not a regular file")
    if info.st_size == 0:
        return Reject(item_id, f"zero-byte image file {path}")
    return PoolItem(item_id, source, path=str(path))


# -- table-like files (list files and folder metadata) ------------------------------------------
def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) from a JSONL or CSV file; a row that cannot be parsed comes as an error string."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        if path.suffix.lower() == ".csv":
            for number, row in enumerate(csv.DictReader(handle), start=2):
                yield number, dict(row)
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"invalid JSON: {exc}"
                continue
            yield (
                number,
                row if isinstance(row, dict) else f"expected a JSON object, got {type(row).__name__}",
            )


def image_field(row: dict[str, Any], spec: PoolSpec) -> object:
    """The row's image value: ``spec.image_column``, else the first default image column present."""
    columns = (spec.image_column,) if spec.image_column else DEFAULT_IMAGE_COLUMNS
    return pick(row, columns)[1]


def caption_columns(spec: PoolSpec, megastyle_shard: bool = False) -> tuple[str, ...]:
    """Caption columns to try, in order: the spec's, the role column of MegaStyle shards, or the defaults."""
    if spec.caption_columns is not None:
        return spec.caption_columns
    return (spec.role,) if megastyle_shard else DEFAULT_CAPTION_COLUMNS


# -- shard files (Parquet and tar pools) --------------------------------------------------------
def shard_files(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """``path`` itself, or the non-hidden files under it ending in ``suffixes`` (sorted)."""
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.name.lower().endswith(suffixes) and not p.name.startswith(".")
    )


def shard_prefix(spec: PoolSpec, path: Path, suffixes: tuple[str, ...]) -> str:
    """Id prefix of one shard: the pool name, plus the shard's relative stem when the pool is a folder."""
    if spec.path.is_file():
        return spec.source_name
    rel = path.relative_to(spec.path).as_posix()
    for suffix in suffixes:
        rel = rel.removesuffix(suffix)
    return f"{spec.source_name}/{rel}"
