"""A user's own labelled images, in the three forms besides MegaStyle shards, read once for every command.

The forms (``detect_form`` tells them apart, or a command names one with ``source_form``):

- ``folders``: an image folder with one subfolder per style; the subfolder's name is the style label
  (images anywhere below it count).
- ``manifest``: a CSV or JSONL file of ``path, style[, content]`` rows (paths relative to the manifest),
  given as the file itself or as the folder that holds it (``manifest``/``metadata``/``labels``.csv/.jsonl,
  or the only .csv/.jsonl there).
- ``parquet``: any Parquet file or folder with an image column (``image_column``, default the first of
  image, file_name, image_path, path: bytes, a ``{bytes, path}`` struct, or a path relative to the file)
  and label columns (``style_column``, default style or label; ``content_column``, default content).
- ``shards``: MegaStyle shards (ours, or the released MegaStyle-1.4M layout): read as they are.

``open_collection`` lists the labelled items of a source and records the bad ones as rejects (missing
file, empty label, unreadable manifest line); nothing is fatal but a source with no usable item.
``import_collection`` writes a collection as MegaStyle shards (the original image bytes, style ids dense
in label order, content ids when content labels exist, every undecodable image a reject) with
``rejects.jsonl`` and ``import.json`` (written last: it marks a finished import). ``ensure_shards`` is
what the commands call: shards stay where they are, any other form is imported once under the command's
own output folder, keyed on the collection's state so a rerun reuses it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from megastyle.config import ConfigError
from megastyle.data.atomic import atomic_write_json, atomic_write_text
from megastyle.data.images import ImageDecodeError, decode_image, list_image_files
from megastyle.data.schema import OFFICIAL_COLUMNS, StyleRecord
from megastyle.data.shards import DEFAULT_ROWS_PER_SHARD, REJECTS_FILENAME, Reject, ShardWriter, list_shards
from megastyle.progress import track

SourceForm = Literal["auto", "shards", "folders", "manifest", "parquet"]
FORMS: tuple[str, ...] = ("shards", "folders", "manifest", "parquet")
IMAGE_COLUMNS: tuple[str, ...] = ("image", "file_name", "image_path", "path")
STYLE_COLUMNS: tuple[str, ...] = ("style", "label")
CONTENT_COLUMNS: tuple[str, ...] = ("content",)
MANIFEST_SUFFIXES: tuple[str, ...] = (".csv", ".jsonl")
MANIFEST_NAMES: tuple[str, ...] = ("manifest", "metadata", "labels")
IMPORT_SUMMARY = "import.json"
IMPORT_FORMAT = "megastyle_import"
IMPORT_VERSION = 1

_ADDRESS = re.compile(r"<([\w.]+) object at 0x[0-9a-f]+>")  # PIL's messages name objects by address
LOOKED_FOR = "no *.parquet shards, no manifest and no style subfolders"
HOW_TO = "give one folder per style, a manifest CSV/JSONL, or Parquet with --style-column"


def clean_cause(text: str) -> str:
    """A decoder's message without the object addresses PIL puts in it (``<_io.BytesIO object at 0x..>``)."""
    return _ADDRESS.sub(r"<\1>", text)


class CollectionError(ConfigError):
    """A source that is no collection, or one with no usable item; the message names the source."""


# ----- the options every collection-reading command shares ---------------------------------------------
def form_field() -> Any:
    """The ``source_form`` field of a command config."""
    return Field(
        "auto",
        description="What the source is: auto (detect), shards, folders (one subfolder per style), "
        "manifest (CSV/JSONL of path, style[, content]) or parquet (with label columns).",
    )


def image_column_field() -> Any:
    """The ``image_column`` field of a command config."""
    return Field(
        None,
        description="Manifest/Parquet image column (default: the first of image, file_name, image_path, path).",
    )


def style_column_field() -> Any:
    """The ``style_column`` field of a command config."""
    return Field(None, description="Manifest/Parquet style-label column (default: style, else label).")


def content_column_field() -> Any:
    """The ``content_column`` field of a command config."""
    return Field(None, description="Manifest/Parquet content-label column (default: content, when present).")


@dataclass(frozen=True)
class CollectionOptions:
    """How to read a source: its form (or ``auto``) and the manifest/Parquet column names."""

    form: str = "auto"
    image_column: str | None = None
    style_column: str | None = None
    content_column: str | None = None

    @classmethod
    def of(cls, cfg: Any) -> CollectionOptions:
        """The options of a command config with the ``source_form`` and ``*_column`` fields."""
        return cls(
            form=getattr(cfg, "source_form", "auto"),
            image_column=getattr(cfg, "image_column", None),
            style_column=getattr(cfg, "style_column", None),
            content_column=getattr(cfg, "content_column", None),
        )

    def is_default(self) -> bool:
        """True when nothing was set (auto-detection, the usual column names)."""
        return self == CollectionOptions()


# ----- items ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledItem:
    """One image of a collection: a file (``path``) or a Parquet row (``file``, ``row``), with its labels."""

    id: str
    style: str | None
    content: str | None = None
    path: Path | None = None
    file: int | None = None  # position in LabelledCollection.parquet_files
    row: int | None = None  # row within that file


@dataclass
class LabelledCollection:
    """The labelled items of one source, in a stable order, with the items refused while listing them."""

    source: Path
    form: str
    items: list[LabelledItem]
    rejects: list[Reject] = field(default_factory=list)
    options: CollectionOptions = field(default_factory=CollectionOptions)
    manifest: Path | None = None
    parquet_files: list[Path] = field(default_factory=list)
    columns: dict[str, str | None] = field(default_factory=dict)  # the columns actually read
    _images: _ParquetImages | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_content(self) -> bool:
        """Does any item carry a content label?"""
        return any(item.content for item in self.items)

    def styles(self) -> list[str]:
        """The style labels, sorted (a style's id is its position here)."""
        return sorted({item.style for item in self.items if item.style is not None})

    def contents(self) -> list[str]:
        """The content labels, sorted (a content's id is its position here)."""
        return sorted({item.content for item in self.items if item.content})

    def read_bytes(self, item: LabelledItem) -> bytes:
        """The encoded image of ``item`` (ImageDecodeError names it when it cannot be read)."""
        if item.path is not None:
            try:
                return item.path.read_bytes()
            except OSError as err:
                raise ImageDecodeError(f"cannot read file: {err}", item=item.id) from err
        if item.file is None or item.row is None:
            raise ImageDecodeError("no image", item=item.id)
        if self._images is None:
            self._images = _ParquetImages(self.parquet_files, str(self.columns["image"]))
        return self._images.get(item.file, item.row, item.id)

    def fingerprint(self) -> str:
        """sha256 of the form, the options, every item and reject, and the files' sizes and mtimes."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.form, asdict(self.options), self.columns], sort_keys=True).encode())
        for file in [*([self.manifest] if self.manifest else []), *self.parquet_files]:
            stat = file.stat()
            digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        for item in self.items:
            digest.update(f"{item.id}\0{item.style}\0{item.content}\0{item.file}\0{item.row}\0".encode())
            if item.path is not None:
                try:
                    stat = item.path.stat()
                    digest.update(f"{item.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                except OSError:
                    digest.update(b"missing\n")
        for reject in self.rejects:
            digest.update(f"{reject.item}\0{reject.cause}\n".encode())
        return digest.hexdigest()

    def kind(self) -> str:
        """The form in words ("one folder per style", "an image manifest", ...)."""
        return _FORM_NAMES[self.form]

    def describe(self) -> str:
        """One line: the form, styles, images, rejects and whether content labels are present."""
        content = "with content labels" if self.has_content else "no content labels"
        rejected = f", {len(self.rejects)} refused" if self.rejects else ""
        return (
            f"{self.source} ({_FORM_NAMES[self.form]}): {len(self.styles())} styles, "
            f"{len(self.items)} images, {content}{rejected}"
        )


_FORM_NAMES = {
    "shards": "MegaStyle shards",
    "folders": "a folder per style",
    "manifest": "an image manifest",
    "parquet": "Parquet with label columns",
}


class _ParquetImages:
    """Random access to the image column of Parquet files, one row group cached per file."""

    def __init__(self, files: Sequence[Path], column: str) -> None:
        self.files = list(files)
        self.column = column
        self._handles: dict[int, pq.ParquetFile] = {}
        self._starts: dict[int, list[int]] = {}
        self._cache: dict[int, tuple[int, list[Any]]] = {}

    def get(self, file: int, row: int, item: str) -> bytes:
        handle = self._handles.get(file)
        if handle is None:
            handle = self._handles[file] = pq.ParquetFile(self.files[file])
            starts, total = [], 0
            for g in range(handle.metadata.num_row_groups):
                starts.append(total)
                total += handle.metadata.row_group(g).num_rows
            self._starts[file] = starts
        starts = self._starts[file]
        group = max(g for g, start in enumerate(starts) if start <= row)
        cached = self._cache.get(file)
        if cached is None or cached[0] != group:
            values = handle.read_row_group(group, columns=[self.column]).column(0).to_pylist()
            cached = self._cache[file] = (group, values)
        value = cached[1][row - starts[group]]
        return _image_value(value, self.files[file].parent, item)


def _image_value(value: Any, base: Path, item: str) -> bytes:
    """Image bytes from a Parquet cell: bytes, a ``{bytes, path}`` struct, or a path relative to ``base``."""
    if isinstance(value, dict):
        data = value.get("bytes")
        if data:
            return bytes(data)
        value = value.get("path")
    if isinstance(value, bytes | bytearray | memoryview):
        if not len(value):
            raise ImageDecodeError("empty image bytes", item=item)
        return bytes(value)
    if isinstance(value, str) and value.strip():
        path = Path(value) if Path(value).is_absolute() else base / value
        try:
            return path.read_bytes()
        except OSError as err:
            raise ImageDecodeError(f"cannot read file: {err}", item=item) from err
    raise ImageDecodeError("no image bytes or path", item=item)


# ----- detection ------------------------------------------------------------------------------------------
def is_shard_file(path: Path) -> bool:
    """A Parquet file with the released shards' four columns (id, image, content, style)."""
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, pa.ArrowInvalid):
        return False
    return all(column in names for column in OFFICIAL_COLUMNS)


def _manifests(folder: Path) -> list[Path]:
    found = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in MANIFEST_SUFFIXES
        and not p.name.startswith(".")
        and p.name != REJECTS_FILENAME
    )
    named = [p for p in found if p.stem.lower() in MANIFEST_NAMES]
    return named if len(named) == 1 else found


def _parquet_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    for folder in (source, source / "data"):
        if folder.is_dir():
            found = sorted(p for p in folder.glob("*.parquet") if p.is_file() and not p.name.startswith("."))
            if found:
                return found
    return []


def _style_folders(root: Path) -> list[Path]:
    return sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and list_image_files(p)
    )


def _no_form(path: Path, detail: str = "") -> CollectionError:
    return CollectionError(f"{path}: {detail}{LOOKED_FOR} ({HOW_TO})")


def detect_form(source: str | os.PathLike[str], options: CollectionOptions | None = None) -> str:
    """Which form ``source`` is: ``shards``, ``manifest``, ``parquet`` or ``folders`` (in that order of checks).

    An explicit ``options.form`` is checked against the source instead. Raises ``CollectionError`` naming
    what was looked for when nothing fits.
    """
    options = options or CollectionOptions()
    path = Path(source).expanduser()
    if not path.exists():
        raise CollectionError(f"{path}: does not exist")
    if options.form not in ("auto", *FORMS):
        raise CollectionError(
            f"{path}: unknown source form {options.form!r} (one of auto, {', '.join(FORMS)})"
        )
    if options.form != "auto":
        _check_form(path, options.form)
        return options.form
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in MANIFEST_SUFFIXES:
            return "manifest"
        if suffix == ".parquet":
            return "shards" if is_shard_file(path) and options.style_column is None else "parquet"
        raise CollectionError(
            f"{path}: not a collection (give a folder, a manifest .csv/.jsonl or a .parquet file)"
        )
    if list_shards(path) and options.style_column is None:
        return "shards"
    manifests = _manifests(path)
    if len(manifests) > 1:
        names = ", ".join(p.name for p in manifests[:5])
        raise CollectionError(f"{path}: several manifests ({names}); give the one to read as the source")
    if manifests:
        return "manifest"
    if _parquet_files(path):
        return "parquet"
    if _style_folders(path):
        return "folders"
    loose = len(list_image_files(path))
    raise _no_form(path, f"{loose} images but no style labels: " if loose else "")


def _check_form(path: Path, form: str) -> None:
    if form == "shards" and not (list_shards(path) if path.is_dir() else is_shard_file(path)):
        raise CollectionError(
            f"{path}: no MegaStyle shards (train-NNNNN.parquet with id, image, content, style)"
        )
    if form == "manifest" and path.is_dir() and len(_manifests(path)) != 1:
        found = len(_manifests(path))
        raise CollectionError(
            f"{path}: {'no' if not found else f'{found}'} manifest .csv/.jsonl files; give the manifest itself"
        )
    if form == "parquet" and not _parquet_files(path):
        raise CollectionError(f"{path}: no *.parquet files")
    if form == "folders" and (not path.is_dir() or not list_image_files(path)):
        raise CollectionError(f"{path}: no image files below it")


# ----- listing --------------------------------------------------------------------------------------------
def open_collection(
    source: str | os.PathLike[str],
    options: CollectionOptions | None = None,
    *,
    require_labels: bool = True,
) -> LabelledCollection:
    """The labelled items of a folder-per-style set, a manifest or a Parquet source, with listing rejects.

    ``require_labels=False`` (embedding, which needs no labels) also takes a plain image folder and keeps
    images outside a style subfolder, with no style. Shards are not listed here: read them with
    ``ShardReader``.
    """
    options = options or CollectionOptions()
    path = Path(source).expanduser()
    try:
        form = detect_form(path, options)
    except CollectionError:
        # Without labels, a plain image folder is a collection too (its images have no style).
        if require_labels or options.form != "auto" or not path.is_dir() or not list_image_files(path):
            raise
        form = "folders"
    if form == "shards":
        raise CollectionError(f"{path}: MegaStyle shards, read them with ShardReader")
    if form == "folders":
        collection = _open_folders(path, options, require_labels)
    elif form == "manifest":
        collection = _open_manifest(path, options)
    else:
        collection = _open_parquet(path, options)
    if require_labels and not collection.items:
        first = collection.rejects[0] if collection.rejects else None
        detail = f" (first: {first.item}: {first.cause})" if first else ""
        raise CollectionError(f"{path}: no usable labelled image: {len(collection.rejects)} refused{detail}")
    return collection


def _open_folders(root: Path, options: CollectionOptions, require_labels: bool) -> LabelledCollection:
    items: list[LabelledItem] = []
    rejects: list[Reject] = []
    for file in list_image_files(root):
        rel = file.relative_to(root)
        if len(rel.parts) == 1:
            if require_labels:
                rejects.append(Reject(rel.as_posix(), "no style: not inside a style subfolder"))
            else:
                items.append(LabelledItem(rel.as_posix(), None, path=file))
            continue
        items.append(LabelledItem(rel.as_posix(), rel.parts[0], path=file))
    return LabelledCollection(root, "folders", items, rejects, options)


def _pick_column(
    names: Sequence[str], given: str | None, defaults: Sequence[str], what: str, where: Path, required: bool
) -> str | None:
    if given is not None:
        if given not in names:
            raise CollectionError(f"{where}: no {what} column {given!r} (columns: {', '.join(names)})")
        return given
    found = next((name for name in defaults if name in names), None)
    if found is None and required:
        option = f"--{what}-column"
        raise CollectionError(
            f"{where}: no {what} column (looked for {', '.join(defaults)}; columns: {', '.join(names)}; "
            f"set {option})"
        )
    return found


def _manifest_rows(manifest: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any] | str]]]:
    """(column names, iterator of (line, row or the reason the line is unreadable))."""
    text = manifest.read_text(encoding="utf-8-sig")
    if manifest.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        names = [n.strip() for n in (reader.fieldnames or [])]

        def csv_rows() -> Iterator[tuple[int, dict[str, Any] | str]]:
            for row in reader:
                yield reader.line_num, {(k or "").strip(): v for k, v in row.items()}

        return names, csv_rows()
    lines = text.splitlines()
    parsed: list[tuple[int, dict[str, Any] | str]] = []
    names: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            parsed.append((number, f"not JSON: {err.msg}"))
            continue
        if not isinstance(value, dict):
            parsed.append((number, "not a JSON object"))
            continue
        names.extend(k for k in value if k not in names)
        parsed.append((number, value))
    return names, iter(parsed)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _open_manifest(source: Path, options: CollectionOptions) -> LabelledCollection:
    manifest = source if source.is_file() else _manifests(source)[0]
    base = manifest.parent
    names, rows = _manifest_rows(manifest)
    try:
        if not names:
            raise CollectionError(f"{manifest}: empty manifest (expected a header: path, style[, content])")
        image = _pick_column(names, options.image_column, IMAGE_COLUMNS, "image", manifest, True)
        style = _pick_column(names, options.style_column, STYLE_COLUMNS, "style", manifest, True)
    except CollectionError as err:
        if source.is_dir() and options.form == "auto":  # found, not named: it may not be a manifest at all
            raise CollectionError(f"{err}; or set --source-form folders to read {source} without it") from err
        raise
    content = _pick_column(names, options.content_column, CONTENT_COLUMNS, "content", manifest, False)
    items: list[LabelledItem] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        where = f"{manifest.name}:{line}"
        if isinstance(row, str):
            rejects.append(Reject(where, row))
            continue
        raw = _text(row.get(image))
        if raw is None:
            rejects.append(Reject(where, f"no {image}"))
            continue
        item_id = Path(raw).as_posix()
        label = _text(row.get(style))
        if label is None:
            rejects.append(Reject(item_id, f"empty style label ({where})"))
            continue
        if item_id in seen:
            rejects.append(Reject(item_id, f"listed again ({where}; first at line {seen[item_id]})"))
            continue
        seen[item_id] = line
        file = Path(raw) if Path(raw).is_absolute() else base / raw
        if not file.is_file():
            rejects.append(Reject(item_id, f"missing file: {file} ({where})"))
            continue
        items.append(LabelledItem(item_id, label, _text(row.get(content)) if content else None, path=file))
    columns = {"image": image, "style": style, "content": content}
    return LabelledCollection(source, "manifest", items, rejects, options, manifest=manifest, columns=columns)


def _open_parquet(source: Path, options: CollectionOptions) -> LabelledCollection:
    files = _parquet_files(source)
    if not files:
        raise CollectionError(f"{source}: no *.parquet files")
    try:
        names = pq.read_schema(files[0]).names
    except (OSError, pa.ArrowInvalid) as err:
        raise CollectionError(f"{files[0]}: not a readable Parquet file: {err}") from err
    image = _pick_column(names, options.image_column, IMAGE_COLUMNS, "image", files[0], True)
    style = _pick_column(names, options.style_column, STYLE_COLUMNS, "style", files[0], True)
    content = _pick_column(names, options.content_column, CONTENT_COLUMNS, "content", files[0], False)
    assert image is not None and style is not None
    root = source if source.is_dir() else source.parent
    items: list[LabelledItem] = []
    rejects: list[Reject] = []
    ids: list[str | None] = []
    for position, file in enumerate(files):
        try:
            schema = pq.read_schema(file)
        except (OSError, pa.ArrowInvalid) as err:
            raise CollectionError(f"{file}: not a readable Parquet file: {err}") from err
        missing = [c for c in (image, style, content) if c is not None and c not in schema.names]
        if missing:
            raise CollectionError(f"{file}: no column {missing[0]!r} (the first file has it)")
        # Labels (and the image column only when it holds paths): never the image bytes here.
        image_is_path = pa.types.is_string(schema.field(image).type) or pa.types.is_large_string(
            schema.field(image).type
        )
        wanted = [c for c in dict.fromkeys([style, content, "id" if "id" in schema.names else None]) if c]
        if image_is_path:
            wanted.append(image)
        table = pq.read_table(file, columns=wanted)
        labels = table.column(style).to_pylist()
        contents = table.column(content).to_pylist() if content else [None] * table.num_rows
        row_ids = table.column("id").to_pylist() if "id" in table.column_names else [None] * table.num_rows
        paths = table.column(image).to_pylist() if image_is_path else [None] * table.num_rows
        rel = file.relative_to(root).as_posix() if file.is_relative_to(root) else file.name
        for row, (label, text, row_id, image_path) in enumerate(
            zip(labels, contents, row_ids, paths, strict=True)
        ):
            item_id = f"{rel}#{row}"
            label = _text(label)
            if label is None:
                rejects.append(Reject(item_id, "empty style label"))
                continue
            path = None
            if image_is_path:
                if _text(image_path) is None:
                    rejects.append(Reject(item_id, f"no {image}"))
                    continue
                path = Path(image_path) if Path(image_path).is_absolute() else file.parent / image_path
                if not path.is_file():
                    rejects.append(Reject(item_id, f"missing file: {path}"))
                    continue
            items.append(LabelledItem(item_id, label, _text(text), path=path, file=position, row=row))
            ids.append(_text(row_id))
    # The rows' own ids when every row has one and they are unique.
    if items and all(ids) and len(set(ids)) == len(ids):
        items = [
            LabelledItem(str(i), it.style, it.content, it.path, it.file, it.row)
            for i, it in zip(ids, items, strict=True)
        ]
    columns = {"image": image, "style": style, "content": content}
    return LabelledCollection(
        source, "parquet", items, rejects, options, parquet_files=files, columns=columns
    )


# ----- import into shards ---------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    """What an import wrote (``import.json``)."""

    output_dir: str
    source: str
    form: str
    key: str
    styles: int
    images: int
    rejected: int
    content_labels: bool
    shards: int
    format: str = IMPORT_FORMAT
    version: int = IMPORT_VERSION

    def line(self) -> str:
        """One line for a terminal."""
        content = "content labels present" if self.content_labels else "no content labels"
        return (
            f"{self.styles} styles, {self.images} images, {self.rejected} rejected, {content} "
            f"({self.shards} shards in {self.output_dir})"
        )


def read_import_summary(folder: str | os.PathLike[str]) -> ImportSummary | None:
    """The ``import.json`` of a finished import, or None."""
    file = Path(folder) / IMPORT_SUMMARY
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if data.get("format") != IMPORT_FORMAT:
            return None
        return ImportSummary(**data)
    except (ValueError, TypeError):
        return None


def import_collection(
    collection: LabelledCollection,
    output_dir: str | os.PathLike[str],
    *,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    progress: bool = True,
    key: str | None = None,
) -> ImportSummary:
    """Write ``collection`` as MegaStyle shards in ``output_dir`` (which must hold no shards yet).

    Rows are grouped by style in label order; style ids are dense over the styles that kept an image,
    content ids dense over the content labels (none without content labels). The original image bytes
    are kept; an image that does not decode is a reject, as are the listing's rejects (``rejects.jsonl``).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if list_shards(out):
        raise CollectionError(f"{out}: already holds shards")
    contents = {text: i for i, text in enumerate(collection.contents())}
    order = {text: i for i, text in enumerate(collection.styles())}
    items = sorted(
        (item for item in collection.items if item.style is not None), key=lambda item: order[str(item.style)]
    )
    rejects = list(collection.rejects)
    style_ids: dict[str, int] = {}
    writer = ShardWriter(out, rows_per_shard=rows_per_shard)
    with writer, track(f"import {collection.source.name}", len(items), enabled=progress) as bar:
        for item in items:
            bar.advance()
            try:
                data = collection.read_bytes(item)
                decode_image(data, item=item.id)  # refuse what no command could read
            except ImageDecodeError as err:
                rejects.append(Reject(item.id, clean_cause(err.cause)))
                continue
            style = str(item.style)
            style_id = style_ids.setdefault(style, len(style_ids))
            writer.write(
                StyleRecord(
                    id=item.id,
                    image=data,
                    style=style,
                    content=item.content or "",
                    image_path=item.id,
                    style_id=style_id,
                    content_id=contents[item.content] if item.content else None,
                    backend="imported",
                )
            )
    shards, accepted = len(writer.shards_written), writer.rows_committed
    atomic_write_text(out / REJECTS_FILENAME, "".join(r.to_json() + "\n" for r in rejects))
    summary = ImportSummary(
        output_dir=str(out),
        source=str(collection.source),
        form=collection.form,
        key=key or collection.fingerprint(),
        styles=len(style_ids),
        images=accepted,
        rejected=len(rejects),
        content_labels=any(item.content for item in items),
        shards=shards,
    )
    if not accepted:
        first = f" (first: {rejects[0].item}: {rejects[0].cause})" if rejects else ""
        raise CollectionError(f"{collection.source}: no usable image: all {len(rejects)} rejected{first}")
    atomic_write_json(out / IMPORT_SUMMARY, asdict(summary))  # last: marks the import finished
    return summary


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:40] or "source"


@dataclass(frozen=True)
class ResolvedSource:
    """A source ready to read as shards: where the shards are, and the import that made them (if any)."""

    source: Path
    shards: Path
    form: str
    summary: ImportSummary | None = None
    reused: bool = False
    collection: LabelledCollection | None = None

    def notice(self) -> str | None:
        """What happened to a non-shard source, for the terminal (None for shards)."""
        if self.summary is None:
            return None
        verb = "reusing the import of" if self.reused else "imported"
        return f"{verb} {self.source} ({_FORM_NAMES[self.form]}): {self.summary.line()}"


def ensure_shards(
    source: str | os.PathLike[str],
    options: CollectionOptions | None = None,
    *,
    cache_root: str | os.PathLike[str],
    progress: bool = True,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
) -> ResolvedSource:
    """Shards for ``source``: itself when it is shards, else an import under ``cache_root`` (reused when current).

    The import folder is named after the source and a key of its state (``fingerprint``), written under a
    temporary name and renamed into place when finished, so a killed import is never reused.
    """
    options = options or CollectionOptions()
    path = Path(source).expanduser()
    form = detect_form(path, options)
    if form == "shards":
        return ResolvedSource(path, path, form)
    collection = open_collection(path, options)
    key = collection.fingerprint()
    root = Path(cache_root)
    final = root / f"{_slug(path.name)}-{key[:16]}"
    found = read_import_summary(final)
    if found is not None and found.key == key and list_shards(final):
        return ResolvedSource(path, final, form, found, reused=True, collection=collection)
    root.mkdir(parents=True, exist_ok=True)
    temp = root / f".{final.name}.{uuid.uuid4().hex}.tmp"
    try:
        summary = import_collection(
            collection, temp, rows_per_shard=rows_per_shard, progress=progress, key=key
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(temp, final)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    summary.output_dir = str(final)
    atomic_write_json(final / IMPORT_SUMMARY, asdict(summary))
    return ResolvedSource(path, final, form, summary, collection=collection)


def ensure_all_shards(
    sources: Sequence[str | os.PathLike[str]],
    options: CollectionOptions | None,
    *,
    cache_root: str | os.PathLike[str],
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> list[Path]:
    """``ensure_shards`` for each source; ``report`` receives each import's notice."""
    shards = []
    for source in sources:
        resolved = ensure_shards(source, options, cache_root=cache_root, progress=progress)
        notice = resolved.notice()
        if notice and report is not None:
            report(notice)
        shards.append(resolved.shards)
    return shards


def prepare_import_folder(output_dir: str | os.PathLike[str]) -> Path:
    """``output_dir`` ready for ``import_collection``: new or empty (then claimed), or an earlier import.

    A folder that holds anything and was not made by an import is refused (``data.folders``). An earlier
    import's files (shards, rejects, summary, index cache) are removed; nothing else is touched.
    """
    from megastyle.data.folders import claim_output_dir

    out = claim_output_dir(output_dir, "import", legacy=lambda folder: (folder / IMPORT_SUMMARY).is_file())
    for entry in out.iterdir():
        ours = entry.name in (IMPORT_SUMMARY, REJECTS_FILENAME, ".style_index.parquet") or (
            entry.suffix in (".parquet", ".tmp") and entry.name.lstrip(".").startswith("train-")
        )
        if ours and entry.is_file():
            entry.unlink()
    return out
