"""Embed an image collection (a folder, a folder per style, a manifest, labelled Parquet) or MegaStyle shards
into an embeddings file, in resumable chunks.

Output format (no pickle anywhere), for ``out_path = X.safetensors``:
- ``X.safetensors``: tensor ``embeddings`` float32 (n, d), L2-normalised, row i = item i; the header
  metadata ``megastyle`` holds a JSON dict (encoder, source, dim, count).
- ``X.parquet``: one row per embedding, in the same order: ``id``, ``path`` (file or shard),
  ``row`` (global shard row, null for files), ``style_id``, ``content_id``, ``style_label``,
  ``content_label``.
- ``X.rejects.jsonl``: one ``{"id", "path", "cause"}`` line per image that could not be embedded (or was
  refused while listing the collection: a manifest row without a file, an empty label).

Image folders and manifests are read in place (``data.collections``); labelled Parquet is imported once
into shards under ``imported/`` beside ``X`` (reused while the source is unchanged).
Big collections are embedded in chunks under ``X.chunks/`` (one safetensors + parquet per chunk,
written atomically); a rerun reuses finished chunks, then everything is merged into ``X.*``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from megastyle.data import (
    ImageDecodeError,
    ShardReader,
    atomic_write,
    atomic_write_table,
    atomic_write_text,
    decode_image,
    parse_id,
)
from megastyle.data.collections import (
    CollectionError,
    CollectionOptions,
    clean_cause,
    detect_form,
    ensure_shards,
    open_collection,
)
from megastyle.encode.model import StyleEncoder
from megastyle.progress import track

_META_KEY = "megastyle"
_SIDECAR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("row", pa.int64()),
        ("style_id", pa.int64()),
        ("content_id", pa.int64()),
        ("style_label", pa.string()),
        ("content_label", pa.string()),
    ]
)


@dataclass(frozen=True)
class EmbedItem:
    """One image to embed: a file (``row`` None) or a row of a shard collection."""

    id: str
    path: str
    row: int | None = None
    style_id: int | None = None
    content_id: int | None = None
    style_label: str | None = None
    content_label: str | None = None


@dataclass
class EmbeddingSet:
    """Embeddings with their per-row metadata, as written by ``embed_collection``."""

    embeddings: np.ndarray
    items: list[EmbedItem]
    info: dict[str, Any] = field(default_factory=dict)
    rejects: list[dict[str, str]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """Item ids in row order."""
        return [item.id for item in self.items]

    @property
    def style_ids(self) -> list[int | None]:
        """Style ids in row order (None where unknown)."""
        return [item.style_id for item in self.items]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``X.safetensors`` + ``X.parquet`` (+ ``X.rejects.jsonl``) atomically per file."""
        out = _check_out_path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        embeddings = np.ascontiguousarray(self.embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != len(self.items):
            raise ValueError(f"embeddings {embeddings.shape} do not match {len(self.items)} items")
        atomic_write(
            out,
            lambda tmp: save_file({"embeddings": embeddings}, str(tmp), {_META_KEY: json.dumps(self.info)}),
        )
        table = pa.Table.from_pylist([asdict(item) for item in self.items], schema=_SIDECAR_SCHEMA)
        atomic_write_table(sidecar_path(out), table)
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.rejects)
        atomic_write_text(rejects_path(out), lines)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EmbeddingSet:
        """Read a file written by ``save``."""
        out = _check_out_path(path)
        if not out.is_file():
            raise FileNotFoundError(f"embeddings file {out} does not exist")
        with safe_open(str(out), framework="np") as handle:
            info = json.loads((handle.metadata() or {}).get(_META_KEY, "{}"))
        embeddings = load_file(str(out))["embeddings"]
        rows = pq.read_table(sidecar_path(out)).to_pylist()
        items = [EmbedItem(**row) for row in rows]
        rejects = read_rejects(out)
        if len(items) != len(embeddings):
            raise ValueError(f"{out}: {len(embeddings)} embeddings but {len(items)} sidecar rows")
        return cls(embeddings=embeddings, items=items, info=info, rejects=rejects)


def read_rejects(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The ``{"id", "path", "cause"}`` records of images an embedding run could not embed."""
    file = rejects_path(_check_out_path(path))
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line]


def load_embeddings(path: str | os.PathLike[str]) -> EmbeddingSet:
    """Read an embeddings file (``X.safetensors`` and its sidecars)."""
    return EmbeddingSet.load(path)


@dataclass(frozen=True)
class EmbedSummary:
    """What ``embed_collection`` did."""

    out_path: Path
    embedded: int
    rejected: int
    dim: int
    chunks_written: int
    chunks_reused: int
    reused: bool = False  # the whole file was kept from an earlier run (``reuse``)


def _check_out_path(path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    if out.suffix != ".safetensors":
        raise ValueError(f"embeddings path must end with .safetensors, got {out}")
    return out


def sidecar_path(out: Path) -> Path:
    """``X.parquet`` beside ``X.safetensors``."""
    return out.with_suffix(".parquet")


def rejects_path(out: Path) -> Path:
    """``X.rejects.jsonl`` beside ``X.safetensors``."""
    return out.with_suffix(".rejects.jsonl")


@dataclass
class CollectionListing:
    """What to embed: the items, the images refused while listing, and the shards that hold shard rows."""

    items: list[EmbedItem]
    rejects: list[dict[str, str]] = field(default_factory=list)
    shards: Path | None = None  # the shard folder/file items with a ``row`` come from
    notice: str | None = None  # what an import did, for the terminal


def read_collection(
    source: str | os.PathLike[str],
    options: CollectionOptions | None = None,
    *,
    import_root: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> CollectionListing:
    """The items of any collection, in a stable order: shards as they are, image folders and manifests in
    place (a style subfolder's name is the style label; style and content ids are dense in label order),
    labelled Parquet imported into shards under ``import_root``."""
    root = Path(source).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"embedding source {root} does not exist")
    options = options or CollectionOptions()
    try:
        form: str | None = detect_form(root, options)
    except CollectionError:
        form = None  # a plain image folder (no labels) is still something to embed: open_collection says
    if form == "shards":
        return CollectionListing(_shard_items(root), shards=root)
    collection = open_collection(root, options, require_labels=False)
    if collection.form == "parquet":  # rows of an arbitrary Parquet file: read through an import
        if import_root is None:
            raise ValueError(f"{root}: labelled Parquet is imported first; give an import folder")
        resolved = ensure_shards(root, options, cache_root=import_root, progress=progress)
        rejects = [{"id": r.item, "path": str(root), "cause": r.cause} for r in collection.rejects]
        return CollectionListing(_shard_items(resolved.shards), rejects, resolved.shards, resolved.notice())
    style_ids = {text: i for i, text in enumerate(collection.styles())}
    content_ids = {text: i for i, text in enumerate(collection.contents())}
    items = [
        EmbedItem(
            id=item.id,
            path=str(item.path),
            style_id=style_ids.get(item.style) if item.style is not None else None,
            content_id=content_ids.get(item.content) if item.content else None,
            style_label=item.style,
            content_label=item.content,
        )
        for item in collection.items
    ]
    rejects = [{"id": r.item, "path": str(root), "cause": r.cause} for r in collection.rejects]
    return CollectionListing(items, rejects)


def list_collection(source: str | os.PathLike[str]) -> list[EmbedItem]:
    """Items of an image folder (recursive, sorted), a manifest or a shard folder/file, in a stable order."""
    return read_collection(source).items


def _shard_items(root: Path) -> list[EmbedItem]:
    reader = ShardReader(root)
    items: list[EmbedItem] = []
    row = 0
    for position, path in enumerate(reader.shards):
        table = reader.read_shard(position, columns=["id", "style_id", "content_id", "style", "content"])
        for record in table.to_pylist():
            style_id, content_id = record["style_id"], record["content_id"]
            if style_id is None or content_id is None:
                try:  # official shards carry ids only in the row id s{style}_c{content}
                    parsed = parse_id(record["id"])
                    style_id = parsed[0] if style_id is None else style_id
                    content_id = parsed[1] if content_id is None else content_id
                except ValueError:
                    pass
            items.append(
                EmbedItem(
                    id=str(record["id"]),
                    path=str(path),
                    row=row,
                    style_id=style_id,
                    content_id=content_id,
                    style_label=record["style"],
                    content_label=record["content"] or None,
                )
            )
            row += 1
    reader.close()
    return items


def _load_image(item: EmbedItem, reader: ShardReader | None) -> Image.Image:
    if item.row is None:
        try:
            data = Path(item.path).read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"cannot read file: {exc}", item=item.id) from exc
        return decode_image(data, item=item.id)
    if reader is None:
        raise ValueError(f"{item.id}: shard row without a shard reader")
    image = reader.get_row(item.row, columns=["image"])["image"]
    return decode_image((image or {}).get("bytes") or b"", item=item.id)


def embed_batch(
    encoder: StyleEncoder,
    items: Sequence[EmbedItem],
    *,
    reader: ShardReader | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> tuple[np.ndarray, list[EmbedItem], list[dict[str, str]]]:
    """Stage function: decode + embed a batch → (embeddings of the good items, good items, rejects)."""

    def prepare(item: EmbedItem) -> torch.Tensor | str:
        try:
            return encoder.preprocessor.views(_load_image(item, reader))
        except Exception as exc:  # one bad image must never stop a long run: record and go on
            return clean_cause(
                str(exc) if isinstance(exc, ImageDecodeError) else f"{type(exc).__name__}: {exc}"
            )

    prepared = list(pool.map(prepare, items)) if pool is not None else [prepare(i) for i in items]
    good = [(item, t) for item, t in zip(items, prepared, strict=True) if isinstance(t, torch.Tensor)]
    rejects = [
        {"id": item.id, "path": item.path, "cause": t}
        for item, t in zip(items, prepared, strict=True)
        if isinstance(t, str)
    ]
    if not good:
        return np.zeros((0, encoder.dim), dtype=np.float32), [], rejects
    with torch.no_grad():
        embeddings = encoder.embed_views([t for _, t in good]).float().cpu().numpy()
    return embeddings, [item for item, _ in good], rejects


def _fingerprint(encoder: StyleEncoder, items: Sequence[EmbedItem], chunk_size: int) -> str:
    # Cheap identity of (encoder weights, item list, chunking): reusing chunks of another run would mix data.
    digest = hashlib.sha256()
    digest.update(encoder.config.model_dump_json().encode())
    for name, tensor in encoder.vision_model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{float(tensor.double().sum()):.10e}".encode())
    digest.update(str(chunk_size).encode())
    for item in items:
        digest.update(f"{item.id}\0{item.path}\0{item.row}\n".encode())
    return digest.hexdigest()


def embed_collection(
    encoder: StyleEncoder,
    source: str | os.PathLike[str],
    batch_size: int = 32,
    device: str | torch.device | None = None,
    out_path: str | os.PathLike[str] = "embeddings.safetensors",
    *,
    chunk_size: int = 4096,
    workers: int = 0,
    progress: bool = True,
    keep_chunks: bool = False,
    options: CollectionOptions | None = None,
    reuse: bool = False,
    overwrite: bool = True,
    notice: list[str] | None = None,
    on_progress: Callable[[int, int], object] | None = None,
) -> EmbedSummary:
    """Embed every image of ``source`` (any collection, or shards) into ``out_path``; bad images are recorded.

    ``reuse``: an ``out_path`` already written from the same items, encoder and chunking is kept as it is.
    ``overwrite=False``: any other existing ``out_path`` is refused instead of replaced.
    ``notice`` collects what an import of the source did; ``on_progress(done, total)`` follows the images.
    """
    if batch_size < 1 or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be ≥ 1")
    out = _check_out_path(out_path)
    listing = read_collection(source, options, import_root=out.parent / "imported", progress=progress)
    if listing.notice and notice is not None:
        notice.append(listing.notice)
    items = listing.items
    fingerprint = _fingerprint(encoder, items, chunk_size)
    if reuse and out.is_file():
        try:
            previous = EmbeddingSet.load(out)
        except (OSError, ValueError):
            previous = None
        if previous is not None and previous.info.get("fingerprint") == fingerprint:
            return EmbedSummary(
                out, len(previous.items), len(previous.rejects), encoder.dim, 0, 0, reused=True
            )
    if out.is_file() and not overwrite:
        raise ValueError(
            f"{out}: already holds embeddings of another source, encoder or chunking; pass --overwrite true to "
            "replace them, or choose another --output"
        )
    chunk_dir = out.with_suffix(".chunks")
    chunk_dir.mkdir(parents=True, exist_ok=True)
    manifest = chunk_dir / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text())["fingerprint"] != fingerprint:
        raise ValueError(
            f"{chunk_dir} holds chunks of a different encoder, source or chunk size; delete it to start over"
        )
    manifest.write_text(json.dumps({"fingerprint": fingerprint, "items": len(items)}))
    if device is not None:
        encoder.to(device)
    was_training = encoder.training
    encoder.eval()
    reader = (
        ShardReader(listing.shards)
        if listing.shards is not None and any(i.row is not None for i in items)
        else None
    )
    pool = ThreadPoolExecutor(workers) if workers > 0 else None
    written = reused = 0
    try:
        with track("embed", len(items), enabled=progress) as bar:
            for start in range(0, len(items), chunk_size):
                chunk_path = chunk_dir / f"chunk-{start // chunk_size:06d}.safetensors"
                chunk = items[start : start + chunk_size]
                if chunk_path.is_file() and rejects_path(chunk_path).is_file():
                    reused += 1
                    bar.advance(len(chunk))
                    if on_progress is not None:
                        on_progress(bar.completed, len(items))
                    continue
                parts: list[np.ndarray] = []
                good: list[EmbedItem] = []
                rejects: list[dict[str, str]] = []
                for i in range(0, len(chunk), batch_size):
                    emb, ok, bad = embed_batch(encoder, chunk[i : i + batch_size], reader=reader, pool=pool)
                    parts.append(emb)
                    good.extend(ok)
                    rejects.extend(bad)
                    bar.advance(len(chunk[i : i + batch_size]))
                    if on_progress is not None:
                        on_progress(bar.completed, len(items))
                embeddings = np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)
                # The rejects file is written last: its presence marks the chunk complete.
                EmbeddingSet(embeddings, good, rejects=rejects).save(chunk_path)
                written += 1
    finally:
        encoder.train(was_training)
        if pool is not None:
            pool.shutdown()
        if reader is not None:
            reader.close()
    merged = _merge_chunks(chunk_dir, encoder, len(range(0, len(items), chunk_size)))
    merged.rejects = listing.rejects + merged.rejects
    merged.info = {
        "encoder_tower": encoder.config.tower,
        "dim": encoder.dim,
        "image_size": encoder.image_size,
        "source": str(source),
        "count": len(merged.items),
        "rejected": len(merged.rejects),
        "fingerprint": fingerprint,
    }
    merged.save(out)
    if not keep_chunks:
        shutil.rmtree(chunk_dir, ignore_errors=True)
    return EmbedSummary(out, len(merged.items), len(merged.rejects), encoder.dim, written, reused)


def _merge_chunks(chunk_dir: Path, encoder: StyleEncoder, count: int) -> EmbeddingSet:
    sets = [EmbeddingSet.load(chunk_dir / f"chunk-{i:06d}.safetensors") for i in range(count)]
    embeddings = (
        np.concatenate([s.embeddings for s in sets]) if sets else np.zeros((0, encoder.dim), np.float32)
    )
    return EmbeddingSet(
        embeddings=embeddings,
        items=[item for s in sets for item in s.items],
        rejects=[r for s in sets for r in s.rejects],
    )
