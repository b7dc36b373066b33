"""Ingest stage: style and content pools from image folders, Parquet, WebDataset tars or image lists.

``iter_pool(spec)`` yields ``PoolItem``s lazily: folders and list files hold paths (read at caption
time), Parquet rows and tar members carry their bytes. Images are never decoded here; missing and
zero-byte files, unreadable tar members or Parquet files, empty or non-text captions become ``Reject``s
(item id + cause) handed to ``on_reject``, and iteration goes on. Ids are ``{name}/{relative path}``,
``{name}/{shard}/{key}`` or ``{name}/{row id}``: stable across runs and unique within one pool.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from megastyle.curate.items import PoolItem
from megastyle.data import ALL_COLUMNS, OFFICIAL_COLUMNS, Reject, ShardReader

logger = logging.getLogger(__name__)

PoolKind = Literal["folder", "parquet", "webdataset", "list"]
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
METADATA_FILES: tuple[str, ...] = ("metadata.jsonl", "captions.jsonl", "metadata.csv", "captions.csv")
DEFAULT_CAPTION_COLUMNS: tuple[str, ...] = ("caption", "text", "prompt")
DEFAULT_IMAGE_COLUMNS: tuple[str, ...] = ("image", "file_name", "image_path", "path", "jpg", "png", "webp")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_LIST_SUFFIXES = (".jsonl", ".csv")

Entry = PoolItem | Reject
RejectSink = Callable[[Reject], object] | list[Reject] | None


class PoolSpec(BaseModel):
    """Where one pool source lives and how to read it (the kind is detected from ``path`` by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    kind: PoolKind | Literal["auto"] = "auto"
    role: Literal["style", "content"] = "style"
    name: str | None = Field(None, description="id prefix; default: the path's name without suffix")
    image_column: str | None = Field(None, description="Parquet/list/metadata column holding the image")
    caption_columns: tuple[str, ...] | None = Field(
        None,
        description="first present wins; default: the role column for MegaStyle shards, else caption/text/prompt",
    )
    require_caption: bool = False
    limit: int | None = Field(None, ge=0, description="stop after this many accepted items")
    shuffle: bool = False
    seed: int = 0
    shuffle_buffer: int = Field(
        10_000, ge=1, description="Parquet/tar only: folder and list sources shuffle exactly"
    )
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS

    @property
    def source_name(self) -> str:
        """The id prefix of this pool's items."""
        if self.name:
            return self.name
        name = self.path.name
        for suffix in (*_TAR_SUFFIXES, ".parquet", *_LIST_SUFFIXES):
            name = name.removesuffix(suffix)
        return name or "pool"

    def resolved_kind(self) -> PoolKind:
        """``kind``, or the kind detected from ``path``."""
        return detect_kind(self.path, self.extensions) if self.kind == "auto" else self.kind


def detect_kind(path: str | Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> PoolKind:
    """Kind of a pool path: by suffix for files; for folders, the one kind of file found inside."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"pool path {path} does not exist")
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".parquet"):
            return "parquet"
        if name.endswith(_TAR_SUFFIXES):
            return "webdataset"
        if name.endswith(_LIST_SUFFIXES):
            return "list"
        raise ValueError(f"{path}: cannot tell the pool kind from the suffix; set kind explicitly")
    found: set[PoolKind] = set()
    for _, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for filename in filenames:
            lower = filename.lower()
            if lower.endswith(".parquet") and not filename.startswith("."):
                found.add("parquet")
            elif lower.endswith(_TAR_SUFFIXES):
                found.add("webdataset")
            elif lower.endswith(tuple(extensions)):
                found.add("folder")
        if len(found) > 1:  # stop scanning as soon as the answer is ambiguous
            raise ValueError(f"{path} mixes {sorted(found)} files; set the pool kind explicitly")
    if not found:
        raise ValueError(f"{path}: no images, Parquet or tar shards found")
    return found.pop()


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


def _pick(row: dict[str, Any], columns: Sequence[str]) -> tuple[str | None, object]:
    for column in columns:
        if column in row:
            return column, row[column]
    return None, None


def _with_caption(item: PoolItem, value: object, where: str, spec: PoolSpec) -> Entry:
    caption, cause = _caption(value, where)
    if cause:
        return Reject(item.id, cause)
    if caption is None and spec.require_caption:
        return Reject(item.id, f"{where}: no caption (require_caption is set)")
    return PoolItem(item.id, item.source, item.image_bytes, item.path, caption)


def _file_item(item_id: str, path: Path, source: str) -> Entry:
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
def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
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


def _image_field(row: dict[str, Any], spec: PoolSpec) -> object:
    columns = (spec.image_column,) if spec.image_column else DEFAULT_IMAGE_COLUMNS
    return _pick(row, columns)[1]


def _caption_columns(spec: PoolSpec, megastyle_shard: bool = False) -> tuple[str, ...]:
    if spec.caption_columns is not None:
        return spec.caption_columns
    return (spec.role,) if megastyle_shard else DEFAULT_CAPTION_COLUMNS


def _iter_list_file(path: Path, spec: PoolSpec) -> Iterator[Entry]:
    """Rows of a JSONL/CSV list: a local image path (relative to the list file) plus a caption."""
    name, seen = spec.source_name, dict[str, int]()
    for number, row in _read_rows(path):
        where = f"{path.name}:{number}"
        if isinstance(row, str):
            yield Reject(f"{name}/{where}", f"{where}: {row}")
            continue
        image = _image_field(row, spec)
        if not isinstance(image, str) or not image.strip():
            yield Reject(f"{name}/{where}", f"{where}: no image path in the row")
            continue
        # Several rows may name one image (one per caption): later ones get #2, #3...
        seen[image] = seen.get(image, 0) + 1
        item_id = f"{name}/{image}" if seen[image] == 1 else f"{name}/{image}#{seen[image]}"
        if "://" in image:
            yield Reject(item_id, f"{where}: {image} is a URL; ingest reads local files only")
            continue
        item = _file_item(item_id, (path.parent / image), str(path))
        column, value = _pick(row, _caption_columns(spec))
        yield item if isinstance(item, Reject) else _with_caption(item, value, f"{where} {column}", spec)


def _iter_folder(root: Path, spec: PoolSpec) -> Iterator[Entry]:
    """Images under ``root`` (recursive, sorted); captions from metadata files or ``name.txt`` sidecars."""
    name, extensions = spec.source_name, tuple(e.lower() for e in spec.extensions)
    # image path → (caption value, where, row id), from metadata files met on the way down
    listed: dict[Path, tuple[object, str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        names = set(filenames)
        for meta in (m for m in METADATA_FILES if m in names):
            for number, row in _read_rows(here / meta):
                where = f"{(here / meta).relative_to(root).as_posix()}:{number}"
                image = _image_field(row, spec) if isinstance(row, dict) else None
                if not isinstance(image, str):
                    yield Reject(
                        f"{name}/{where}", f"{where}: {row if isinstance(row, str) else 'no file_name'}"
                    )
                    continue
                column, value = _pick(row, _caption_columns(spec))
                listed[(here / image).resolve()] = (value, f"{where} {column}", f"{name}/{where}")
        for filename in sorted(names):
            if filename.startswith(".") or not filename.lower().endswith(extensions):
                continue
            path = here / filename
            item = _file_item(f"{name}/{path.relative_to(root).as_posix()}", path, str(root))
            if isinstance(item, Reject):
                yield item
                continue
            value, where, _ = listed.pop(path.resolve(), (None, "", "")) if listed else (None, "", "")
            sidecar = f"{Path(filename).stem}.txt"
            if value is None and sidecar in names:
                value, where = (here / sidecar).read_bytes(), sidecar
            yield _with_caption(item, value, where, spec)
    for path, (_, where, row_id) in listed.items():  # metadata rows whose image never turned up
        yield Reject(row_id, f"{where.split(' ')[0]}: names a missing image {path}")


# -- Parquet ------------------------------------------------------------------------------------
def _shard_files(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.name.lower().endswith(suffixes) and not p.name.startswith(".")
    )


def _prefix(spec: PoolSpec, path: Path, suffixes: tuple[str, ...]) -> str:
    """Id prefix of one shard: the pool name, plus the shard's relative stem when the pool is a folder."""
    if spec.path.is_file():
        return spec.source_name
    rel = path.relative_to(spec.path).as_posix()
    for suffix in suffixes:
        rel = rel.removesuffix(suffix)
    return f"{spec.source_name}/{rel}"


def _parquet_rows(path: Path, spec: PoolSpec) -> tuple[Iterator[dict[str, Any]], str, tuple[str, ...]]:
    """Row dicts of one file (via ShardReader for MegaStyle shards), its image column and caption columns."""
    schema = pq.read_schema(path)
    megastyle_captions = _caption_columns(spec, megastyle_shard=True)
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
    captions = tuple(c for c in _caption_columns(spec) if c in schema.names)
    columns = [image_column, *captions, *(["id"] if "id" in schema.names else [])]
    handle = pq.ParquetFile(path)
    rows = (
        row for batch in handle.iter_batches(batch_size=256, columns=columns) for row in batch.to_pylist()
    )
    return rows, image_column, captions


def _iter_parquet_file(path: Path, spec: PoolSpec) -> Iterator[Entry]:
    prefix = _prefix(spec, path, (".parquet",))
    try:
        rows, image_column, captions = _parquet_rows(path, spec)
        for index, row in enumerate(rows):
            row_id = row.get("id")
            item_id = (
                f"{prefix}/{row_id}"
                if isinstance(row_id, str | int) and row_id != ""
                else f"{prefix}/{index}"
            )
            yield _parquet_item(item_id, row, image_column, captions, path, spec)
    except (OSError, ValueError, pa.ArrowException) as exc:  # unreadable file or a corrupt page mid-file
        yield Reject(prefix, f"{path}: unreadable Parquet: {type(exc).__name__}: {exc}")


def _parquet_item(
    item_id: str, row: dict[str, Any], column: str, captions: tuple[str, ...], path: Path, spec: PoolSpec
) -> Entry:
    value = row.get(column)
    data, ref = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (value, None)
    if data:
        item: Entry = PoolItem(item_id, str(path), image_bytes=bytes(data))
    elif ref and not data:
        # HF Image struct with only a path: a file next to the shard (or absolute).
        item = _file_item(item_id, path.parent / ref, str(path))
    else:
        return Reject(
            item_id, f"{path.name}: {'zero-byte' if data == b'' else 'no'} image in column {column!r}"
        )
    caption_column, caption = _pick({c: row.get(c) for c in captions}, captions)
    where = f"{path.name} column {caption_column}"
    return item if isinstance(item, Reject) else _with_caption(item, caption, where, spec)


# -- WebDataset tar shards ----------------------------------------------------------------------
def _split_key(member_name: str) -> tuple[str, str]:
    """WebDataset convention: the key is the path up to the first dot of the file name."""
    folder, _, base = member_name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _tar_sample(item_id: str, members: dict[str, bytes | Exception], source: str, spec: PoolSpec) -> Entry:
    image_exts = [e.lstrip(".").lower() for e in spec.extensions]
    ext = next((e for e in image_exts if e in members), None)
    if ext is None:
        return Reject(item_id, f"{source}: sample has no image member (has {sorted(members)})")
    data = members[ext]
    if isinstance(data, Exception):
        return Reject(item_id, f"{source}: unreadable tar member .{ext}: {data}")
    if not data:
        return Reject(item_id, f"{source}: zero-byte image member .{ext}")
    item = PoolItem(item_id, source, image_bytes=data)
    for ext in ("txt", "json"):
        if isinstance(members.get(ext), Exception):
            return Reject(item_id, f"{source}: unreadable tar member .{ext}: {members[ext]}")
    if "txt" in members:
        return _with_caption(item, members["txt"], f"{item_id}.txt", spec)
    if "json" in members:
        try:
            meta = json.loads(members["json"])  # type: ignore[arg-type]
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return Reject(item_id, f"{source}: {item_id}.json is not valid JSON: {exc}")
        if not isinstance(meta, dict):
            return Reject(item_id, f"{source}: {item_id}.json is not a JSON object")
        column, value = _pick(meta, _caption_columns(spec))
        return _with_caption(item, value, f"{item_id}.json {column}", spec)
    return _with_caption(item, None, f"{item_id}", spec)


def _iter_tar(path: Path, spec: PoolSpec) -> Iterator[Entry]:
    """Stream one tar shard (members read in order, never all at once); samples are runs of one key."""
    prefix, source = _prefix(spec, path, _TAR_SUFFIXES), str(path)
    key: str | None = None
    members: dict[str, bytes | Exception] = {}
    done: set[str] = set()  # keys already emitted: a key that comes back would duplicate an id
    try:
        with tarfile.open(path, mode="r|*") as stream:
            for member in stream:
                if member.isdir():
                    continue
                member_key, ext = _split_key(member.name)
                if member_key in done:  # not contiguous: its sample was already emitted under this id
                    yield Reject(f"{prefix}/{member_key}", f"{source}: {member.name} repeats an earlier key")
                    continue
                if member_key != key:
                    if key is not None:
                        yield _tar_sample(f"{prefix}/{key}", members, source, spec)
                        done.add(key)
                    key, members = member_key, {}
                try:
                    handle = stream.extractfile(member) if member.isfile() else None
                    if handle is None:
                        raise tarfile.ExtractError(f"{member.name} is not a regular file")
                    members[ext] = handle.read()
                except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                    members[ext] = exc
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        if key is not None:  # members read before the break are whole; judge that sample on its own
            yield _tar_sample(f"{prefix}/{key}", members, source, spec)
            key = None
        yield Reject(prefix, f"{path}: tar stream broken, rest of shard skipped: {type(exc).__name__}: {exc}")
    if key is not None:
        yield _tar_sample(f"{prefix}/{key}", members, source, spec)


# -- the pool -----------------------------------------------------------------------------------
def _buffer_shuffle(
    entries: Iterable[Entry], rng: np.random.Generator, buffer: int | None
) -> Iterator[Entry]:
    """Exact shuffle when ``buffer`` is None, else a streaming shuffle through a ``buffer``-item window."""
    window: list[Entry] = []
    for entry in entries:
        window.append(entry)
        if buffer is not None and len(window) >= buffer:
            pick = int(rng.integers(len(window)))
            window[pick], window[-1] = window[-1], window[pick]
            yield window.pop()
    order = rng.permutation(len(window))
    yield from (window[i] for i in order)


def _entries(spec: PoolSpec, rng: np.random.Generator) -> tuple[Iterator[Entry], int | None]:
    kind = spec.resolved_kind()
    if kind == "folder":
        return _iter_folder(spec.path, spec), None
    if kind == "list":
        return _iter_list_file(spec.path, spec), None
    suffixes = (".parquet",) if kind == "parquet" else _TAR_SUFFIXES
    files = _shard_files(spec.path, suffixes)
    if spec.shuffle:
        files = [files[i] for i in rng.permutation(len(files))]
    read = _iter_parquet_file if kind == "parquet" else _iter_tar
    return (entry for f in files for entry in read(f, spec)), spec.shuffle_buffer


def _sink(on_reject: RejectSink) -> Callable[[Reject], object]:
    if isinstance(on_reject, list):
        return on_reject.append
    if on_reject is None:
        return lambda reject: logger.warning("pool reject %s: %s", reject.item, reject.cause)
    return on_reject


def iter_pool(spec: PoolSpec, on_reject: RejectSink = None) -> Iterator[PoolItem]:
    """Yield the pool's items lazily; rejects go to ``on_reject`` (a callable or a list; default: a log warning).

    The path and kind are checked at call time (a clear error before any item); reading is lazy.
    """
    if not spec.path.exists():
        raise FileNotFoundError(f"pool {spec.source_name}: no such file or folder {spec.path}")
    rng = np.random.default_rng(spec.seed)
    entries, buffer = _entries(spec, rng)
    if spec.shuffle:
        entries = _buffer_shuffle(entries, rng, buffer)
    return _accepted(entries, _sink(on_reject), spec.limit)


def _accepted(
    entries: Iterator[Entry], report: Callable[[Reject], object], limit: int | None
) -> Iterator[PoolItem]:
    accepted = 0
    if limit == 0:
        return
    for entry in entries:
        if isinstance(entry, Reject):
            report(entry)
            continue
        yield entry
        accepted += 1
        if limit is not None and accepted >= limit:
            return


def iter_pools(specs: Sequence[PoolSpec], on_reject: RejectSink = None) -> Iterator[PoolItem]:
    """Chain several sources into one pool; their names must differ so ids stay unique."""
    names = [s.source_name for s in specs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"pool sources share the names {duplicated}; give each PoolSpec a distinct name")
    for spec in specs:
        yield from iter_pool(spec, on_reject)


def read_pool(spec: PoolSpec) -> tuple[list[PoolItem], list[Reject]]:
    """Eager ``iter_pool`` for small pools and tests: (items, rejects)."""
    rejects: list[Reject] = []
    items = list(iter_pool(spec, rejects))
    return items, rejects
