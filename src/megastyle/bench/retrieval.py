"""StyleRetrieval: held-out styles split into queries and a gallery (an artefact), every encoder scored on it.

Artefact folder (``save``/``load``):

- ``benchmark.json``: the manifest: build parameters, counts, the source shards and a
  fingerprint of their content (name, byte size, row count and a hash of the ``id`` and
  ``style`` columns of every shard; mtimes are left out so a copied dataset still matches).
- ``rows.parquet``: one row per benchmark image (role ``query``/``gallery``, shard file and
  row within it, global row, id, style, style_id, content_id, dense label). Images are
  referenced, not copied, so the artefact stays small; every read checks the row's id.
- ``heldout_styles.json``: every style the benchmark uses (ids and texts), so that
  ``train-encoder`` can leave them out of training (``load_heldout_styles``).

Two kinds of split: ``build_benchmark`` holds out some styles of a training set (the encoder must not
have trained on them); ``build_all_styles_benchmark`` scores every style of an external labelled set,
with a share of each style's images as queries or every image a query against all the others
(leave-one-out: role ``both``). ``evaluate`` can leave out exact duplicates (the same image bytes) so a
query never finds its own copy, and reads content-retrieval Recall@1 beside style retrieval where the
rows carry content ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from megastyle.bench.encoders import Embedder
from megastyle.bench.metrics import RetrievalScores, evaluate_embeddings
from megastyle.data import (
    Reject,
    ShardReader,
    StyleIndex,
    atomic_write_table,
    build_style_index,
    decode_image,
)
from megastyle.data.collections import clean_cause
from megastyle.data.neighbours import TopK, topk_search
from megastyle.progress import step

FORMAT = "megastyle_style_retrieval"
FORMAT_VERSION = 1
MANIFEST_NAME = "benchmark.json"
ROWS_NAME = "rows.parquet"
HELDOUT_NAME = "heldout_styles.json"


QUERY_ROLES = ("query", "both")
GALLERY_ROLES = ("gallery", "both")
LEAVE_ONE_OUT = "leave-one-out"


class BenchmarkSourceError(ValueError):
    """The benchmark's source shards are missing or differ from those it was built from."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark image, referenced by its place in the source shards."""

    role: str  # "query", "gallery", or "both" (leave-one-out: a query against every other image)
    global_row: int
    shard: str  # shard file name
    shard_row: int
    id: str
    style: str
    style_id: int | None
    content_id: int | None
    label: int  # dense style label inside the benchmark


def source_fingerprint(reader: ShardReader) -> str:
    """sha256 over each shard's name, byte size, row count and its ``id``/``style`` columns."""
    digest = hashlib.sha256()
    for position, shard in enumerate(reader.shards):
        table = reader.read_shard(position, ["id", "style"])
        digest.update(f"{shard.name}\0{shard.stat().st_size}\0{table.num_rows}\n".encode())
        for name in ("id", "style"):
            for chunk in table[name].chunks:
                for buffer in chunk.buffers():
                    if buffer is not None:
                        digest.update(buffer)
    return digest.hexdigest()


def _count(value: int | float, available: int, what: str) -> int:
    """An int is a count; a float is a fraction in (0, 1] of ``available`` (at least 1)."""
    if isinstance(value, float):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{what} as a fraction must be in (0, 1], got {value}")
        return max(1, round(value * available))
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return int(value)


@dataclass
class RetrievalBenchmark:
    """Queries and gallery over held-out styles, plus where their images live."""

    items: list[BenchmarkItem]
    manifest: dict[str, Any]
    source_shards: list[Path]
    _reader: ShardReader | None = field(default=None, repr=False)

    @property
    def queries(self) -> list[BenchmarkItem]:
        """Query items in benchmark order (leave-one-out items included)."""
        return [item for item in self.items if item.role in QUERY_ROLES]

    @property
    def gallery(self) -> list[BenchmarkItem]:
        """Gallery items in benchmark order (leave-one-out items included)."""
        return [item for item in self.items if item.role in GALLERY_ROLES]

    @property
    def mode(self) -> str:
        """``heldout`` (some styles of a training set) or ``all_styles`` (every style of a labelled set)."""
        return str(self.manifest.get("params", {}).get("mode", "heldout"))

    @property
    def heldout_styles(self) -> list[dict[str, Any]]:
        """Every style the benchmark uses: ``{"style_id", "style", "role"}``."""
        return list(self.manifest["styles"])

    def reader(self) -> ShardReader:
        """A reader over the source shards (opened once)."""
        if self._reader is None:
            missing = [str(p) for p in self.source_shards if not p.is_file()]
            if missing:
                raise BenchmarkSourceError(f"benchmark source shards are missing: {missing[:4]}")
            self._reader = ShardReader(self.source_shards, columns=["id", "image"])
        return self._reader

    def load_bytes(self, items: Sequence[BenchmarkItem]) -> list[bytes]:
        """The encoded images of ``items`` (an id mismatch is a BenchmarkSourceError)."""
        reader = self.reader()
        out = []
        for item in items:
            row = reader.get_row(item.global_row, columns=["id", "image"])
            if row["id"] != item.id:
                raise BenchmarkSourceError(
                    f"row {item.global_row} of the source is {row['id']!r}, the benchmark expects {item.id!r}"
                )
            out.append(bytes((row["image"] or {}).get("bytes") or b""))
        return out

    def load_images(self, items: Sequence[BenchmarkItem]) -> list[Image.Image]:
        """Decode the images of ``items`` (ImageDecodeError names the row; an id mismatch is an error)."""
        return [
            decode_image(data, item=item.id) for item, data in zip(items, self.load_bytes(items), strict=True)
        ]

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the artefact folder (manifest, rows, held-out styles); returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        # Column types from the annotations: str fields → string, int fields (nullable or not) → int64.
        fields = BenchmarkItem.__annotations__.items()
        schema = pa.schema([(n, pa.string() if a == "str" else pa.int64()) for n, a in fields])
        table = pa.Table.from_pylist([asdict(item) for item in self.items], schema=schema)
        pq.write_table(table, folder / ROWS_NAME)
        # Relative to the artefact folder, so the benchmark loads from any working directory and still
        # finds its shards when the two are moved together.
        shards = [os.path.relpath(Path(p).resolve(), folder.resolve()) for p in self.source_shards]
        manifest = dict(self.manifest, source_shards=shards)
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        heldout = {
            "format": "megastyle_heldout_styles",
            "version": FORMAT_VERSION,
            "source_fingerprint": manifest["source_fingerprint"],
            # Plain texts first: the list train-encoder's --holdout-styles-file reads.
            "heldout_styles": [entry["style"] for entry in manifest["styles"]],
            "styles": manifest["styles"],
        }
        (folder / HELDOUT_NAME).write_text(json.dumps(heldout, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(
        cls, path: str | Path, *, source: str | Path | Sequence[str | Path] | None = None, verify: bool = True
    ) -> RetrievalBenchmark:
        """Read an artefact; ``source`` relocates the shards; ``verify`` checks the content fingerprint."""
        folder = Path(path)
        manifest_path = folder / MANIFEST_NAME
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{folder} holds no {MANIFEST_NAME}: not a saved retrieval benchmark")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
            raise ValueError(f"{manifest_path}: not a version-{FORMAT_VERSION} {FORMAT} manifest")
        stored = [_stored_shard(folder, p) for p in manifest.pop("source_shards")]
        if source is None:
            shards = stored
        elif isinstance(source, str | Path) and Path(source).is_dir():
            shards = [Path(source) / p.name for p in stored]
        else:
            shards = [Path(p) for p in ([source] if isinstance(source, str | Path) else source)]
        table = pq.read_table(folder / ROWS_NAME)
        items = [BenchmarkItem(**row) for row in table.to_pylist()]
        benchmark = cls(items=items, manifest=manifest, source_shards=shards)
        if verify:
            found = source_fingerprint(benchmark.reader())
            if found != manifest["source_fingerprint"]:
                raise BenchmarkSourceError(
                    f"the source shards {[str(s) for s in shards[:3]]} changed since benchmark {folder} was "
                    f"built (fingerprint {found[:12]} ≠ {manifest['source_fingerprint'][:12]}); rebuild it"
                )
        return benchmark


def _stored_shard(folder: Path, stored: str) -> Path:
    """A manifest's shard path: relative to the artefact folder (older artefacts: to the working directory)."""
    path = Path(stored)
    if path.is_absolute():
        return path
    beside = folder / path
    return beside if beside.is_file() or not path.is_file() else path


def build_benchmark(
    source: str | Path | Sequence[str | Path],
    *,
    holdout_styles: int | float = 0.2,
    queries_per_style: int = 1,
    seed: int = 0,
    min_images_per_style: int = 2,
    distractor_styles: int | float = 0,
    max_gallery_per_style: int | None = None,
    heldout: Sequence[str] | None = None,
) -> RetrievalBenchmark:
    """Pick held-out styles (a count, or a fraction of eligible styles) and split each into queries/gallery.

    Eligible styles have at least ``min_images_per_style`` rows (and at least one more than
    ``queries_per_style``). ``heldout`` names the styles instead (texts, or numeric style ids as
    strings, e.g. the list ``train-encoder`` wrote); ``holdout_styles`` is then ignored. Distractor
    styles add gallery-only images; they are also listed as held out, since a trained encoder must
    not have seen them either. Everything is seeded.
    """
    if queries_per_style < 1:
        raise ValueError(f"queries_per_style must be >= 1, got {queries_per_style}")
    reader = ShardReader(source)
    # Fingerprint first: a source rewritten while we read never gets a matching stamp.
    fingerprint = source_fingerprint(reader)
    index = build_style_index(reader)
    minimum = max(min_images_per_style, queries_per_style + 1)
    sizes = np.diff(index.offsets)
    eligible = [label for label in range(len(index)) if sizes[label] >= minimum]
    rng = np.random.default_rng(seed)
    if heldout is not None:
        held = _named_styles(index, heldout, set(eligible), minimum)
    else:
        n_holdout = _count(holdout_styles, len(eligible), "holdout_styles")
        if n_holdout < 1 or n_holdout > len(eligible):
            raise ValueError(
                f"cannot hold out {n_holdout} styles: {len(eligible)} of {len(index)} styles have "
                f">= {minimum} images"
            )
        held = sorted(int(x) for x in rng.choice(eligible, size=n_holdout, replace=False))
    held_set = set(held)
    rest = [label for label in range(len(index)) if label not in held_set]
    n_distract = _count(distractor_styles, len(rest), "distractor_styles") if distractor_styles else 0
    if n_distract > len(rest):
        raise ValueError(f"cannot add {n_distract} distractor styles: only {len(rest)} styles remain")
    distract = sorted(int(x) for x in rng.choice(rest, size=n_distract, replace=False)) if n_distract else []

    # Small columns of the chosen rows only (no image bytes), read shard by shard.
    chosen = {label: index.rows_for_label(label) for label in held + distract}
    wanted = np.sort(np.concatenate(list(chosen.values())))
    meta = _row_metadata(reader, wanted)
    items: list[BenchmarkItem] = []
    styles: list[dict[str, Any]] = []
    for dense, label in enumerate(held + distract):
        rows = chosen[label]
        role_of_style = "query" if label in held_set else "distractor"
        order = rng.permutation(len(rows))
        query_rows = set(rows[order[:queries_per_style]].tolist()) if role_of_style == "query" else set()
        gallery_rows = [int(r) for r in rows[order] if int(r) not in query_rows]
        if max_gallery_per_style is not None:
            gallery_rows = gallery_rows[:max_gallery_per_style]
        for row in sorted(query_rows):
            items.append(_item("query", row, meta, reader, dense))
        for row in sorted(gallery_rows):
            items.append(_item("gallery", row, meta, reader, dense))
        styles.append(
            {"style_id": index.style_ids[label], "style": index.styles[label], "role": role_of_style}
        )
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source_fingerprint": fingerprint,
        "params": {
            "holdout_styles": holdout_styles,
            "queries_per_style": queries_per_style,
            "seed": seed,
            "min_images_per_style": min_images_per_style,
            "distractor_styles": distractor_styles,
            "max_gallery_per_style": max_gallery_per_style,
            "named_heldout": heldout is not None,
        },
        "counts": {
            "source_rows": len(reader),
            "source_styles": len(index),
            "eligible_styles": len(eligible),
            "heldout_styles": len(held),
            "distractor_styles": len(distract),
            "training_styles": len(index) - len(held) - len(distract),
            "queries": sum(item.role == "query" for item in items),
            "gallery": sum(item.role == "gallery" for item in items),
        },
        "styles": styles,
    }
    return RetrievalBenchmark(items=items, manifest=manifest, source_shards=list(reader.shards))


def _named_styles(index: StyleIndex, entries: Sequence[str], eligible: set[int], minimum: int) -> list[int]:
    """Labels of the styles ``entries`` name (text or numeric id); unknown or too small ones are errors."""
    by_id: dict[int, list[int]] = {}
    for label, style_id in enumerate(index.style_ids):
        if style_id is not None:
            by_id.setdefault(style_id, []).append(label)
    labels: set[int] = set()
    unknown = []
    for entry in entries:
        value = str(entry).strip()
        if value in index:
            labels.add(index.label(value))
        elif value.isdigit() and int(value) in by_id:
            labels.update(by_id[int(value)])
        else:
            unknown.append(value)
    if unknown:
        raise ValueError(
            f"{len(unknown)} held-out styles are not in the source: {[u[:60] for u in unknown[:3]]}"
        )
    small = [index.styles[label][:60] for label in labels if label not in eligible]
    if small:
        raise ValueError(f"{len(small)} named styles have fewer than {minimum} images: {small[:3]}")
    if not labels:
        raise ValueError("no held-out styles named")
    return sorted(labels)


def _row_metadata(reader: ShardReader, rows: np.ndarray) -> dict[int, dict[str, Any]]:
    """``global row -> {id, style, style_id, content_id}`` for the sorted ``rows``."""
    out: dict[int, dict[str, Any]] = {}
    start = 0
    for position, count in enumerate(reader.shard_rows):
        local = rows[(rows >= start) & (rows < start + count)] - start
        if len(local):
            table = reader.read_shard(position, ["id", "style", "style_id", "content_id"])
            picked = table.take(pa.array(local)).to_pylist()
            for offset, row in zip(local.tolist(), picked, strict=True):
                out[start + offset] = row
        start += count
    return out


def _item(
    role: str, row: int, meta: dict[int, dict[str, Any]], reader: ShardReader, label: int
) -> BenchmarkItem:
    shard, _, _ = reader.locate(row)
    info = meta[row]
    return BenchmarkItem(
        role=role,
        global_row=row,
        shard=reader.shards[shard].name,
        shard_row=row - sum(reader.shard_rows[:shard]),
        id=info["id"],
        style=info["style"],
        style_id=info["style_id"],
        content_id=info["content_id"],
        label=label,
    )


def build_all_styles_benchmark(
    source: str | Path | Sequence[str | Path],
    *,
    queries: float | str = LEAVE_ONE_OUT,
    seed: int = 0,
    min_images_per_style: int = 2,
    max_gallery_per_style: int | None = None,
) -> RetrievalBenchmark:
    """Every style of a labelled set scored, none held out for training: for an external set.

    ``queries`` is ``"leave-one-out"`` (every image a query against all the others, role ``both``) or a
    fraction in (0, 1): that share of each style's images (rounded, at least one, at most all but one),
    seeded, are queries and the rest the gallery. Styles with fewer than ``min_images_per_style`` images
    (never fewer than 2: a query needs another image of its style) are skipped and listed in the manifest.
    """
    loo = queries == LEAVE_ONE_OUT
    if not loo and (isinstance(queries, str) or not 0.0 < float(queries) < 1.0):
        raise ValueError(f"queries must be '{LEAVE_ONE_OUT}' or a fraction in (0, 1), got {queries!r}")
    reader = ShardReader(source)
    fingerprint = source_fingerprint(reader)
    index = build_style_index(reader)
    minimum = max(2, min_images_per_style)
    sizes = np.diff(index.offsets)
    scored = [label for label in range(len(index)) if sizes[label] >= minimum]
    skipped = [
        {"style": index.styles[label], "style_id": index.style_ids[label], "images": int(sizes[label])}
        for label in range(len(index))
        if sizes[label] < minimum
    ]
    if not scored:
        raise ValueError(
            f"no style to score: all {len(index)} styles have fewer than {minimum} images "
            "(a query needs another image of its style)"
        )
    rng = np.random.default_rng(seed)
    chosen = {label: index.rows_for_label(label) for label in scored}
    meta = _row_metadata(reader, np.sort(np.concatenate(list(chosen.values()))))
    items: list[BenchmarkItem] = []
    styles: list[dict[str, Any]] = []
    for dense, label in enumerate(scored):
        rows = chosen[label]
        if loo:
            gallery_rows = [int(r) for r in rows]
            if max_gallery_per_style is not None:
                gallery_rows = sorted(rng.permutation(gallery_rows)[: max(2, max_gallery_per_style)].tolist())
            items.extend(_item("both", row, meta, reader, dense) for row in sorted(gallery_rows))
        else:
            count = min(len(rows) - 1, max(1, round(float(queries) * len(rows))))
            order = rng.permutation(len(rows))
            query_rows = sorted(int(r) for r in rows[order[:count]])
            gallery_rows = [int(r) for r in rows[order[count:]]]
            if max_gallery_per_style is not None:
                gallery_rows = gallery_rows[:max_gallery_per_style]
            items.extend(_item("query", row, meta, reader, dense) for row in query_rows)
            items.extend(_item("gallery", row, meta, reader, dense) for row in sorted(gallery_rows))
        styles.append({"style_id": index.style_ids[label], "style": index.styles[label], "role": "scored"})
    n_queries = sum(item.role in QUERY_ROLES for item in items)
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source_fingerprint": fingerprint,
        "params": {
            "mode": "all_styles",
            "queries": LEAVE_ONE_OUT if loo else float(queries),
            "seed": seed,
            "min_images_per_style": minimum,
            "max_gallery_per_style": max_gallery_per_style,
        },
        "counts": {
            "source_rows": len(reader),
            "source_styles": len(index),
            "scored_styles": len(scored),
            "skipped_styles": len(skipped),
            "heldout_styles": len(scored),
            "distractor_styles": 0,
            "training_styles": 0,
            "queries": n_queries,
            "gallery": sum(item.role in GALLERY_ROLES for item in items),
        },
        "styles": styles,
        "skipped_styles": skipped,
    }
    return RetrievalBenchmark(items=items, manifest=manifest, source_shards=list(reader.shards))


@dataclass(frozen=True)
class HeldoutStyles:
    """Styles a benchmark holds out; training leaves them out (matched on text, optionally on id)."""

    styles: frozenset[str]
    style_ids: frozenset[int]
    entries: tuple[str, ...] = ()  # as listed (texts, or numeric ids): the ``heldout`` of build_benchmark

    def contains(self, style: str, style_id: int | None = None, *, match_ids: bool = False) -> bool:
        """Is this style held out? Ids only count with ``match_ids`` (they are dataset-specific)."""
        return style in self.styles or (match_ids and style_id is not None and style_id in self.style_ids)

    def __len__(self) -> int:
        return len(self.styles)


def load_heldout_styles(path: str | Path) -> HeldoutStyles:
    """Read a held-out list: ours (or its benchmark folder), train-encoder's, or a bare JSON list."""
    file = Path(path)
    if file.is_dir():
        file = file / HELDOUT_NAME
    if not file.is_file():
        raise FileNotFoundError(f"no held-out style list at {file}")
    data = json.loads(file.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("styles"), list):
        entries = data["styles"]
        return HeldoutStyles(
            styles=frozenset(e["style"] for e in entries),
            style_ids=frozenset(int(e["style_id"]) for e in entries if e.get("style_id") is not None),
            entries=tuple(e["style"] for e in entries),
        )
    names = data.get("heldout_styles") if isinstance(data, dict) else data
    if not isinstance(names, list):
        raise ValueError(f"{file}: expected a list of styles or an object with 'heldout_styles'")
    texts = [str(n) for n in names]
    # train-encoder's lists name a style by its text or by its numeric id.
    return HeldoutStyles(
        styles=frozenset(t for t in texts if not t.isdigit()),
        style_ids=frozenset(int(t) for t in texts if t.isdigit()),
        entries=tuple(texts),
    )


_EVALUATION = ("EncoderRun", "RetrievalResult", "evaluate")


# ----- evaluation ----------------------------------------------------------------------------------
@dataclass
class EncoderRun:
    """One encoder's result: metrics, each query's top gallery positions, and cost."""

    name: str
    scores: RetrievalScores
    top: TopK  # indices into the evaluated gallery list (RetrievalResult.gallery)
    dim: int
    seconds: float
    # Content-retrieval Recall@1 of the same embeddings (None without content ids), over this many queries.
    content_recall: float | None = None
    content_queries: int = 0
    embeddings: np.ndarray | None = field(default=None, repr=False)  # rows = RetrievalResult.embedded


@dataclass(frozen=True)
class Duplicate:
    """An image left out of scoring because its bytes equal those of a query (``duplicate_of``)."""

    id: str
    duplicate_of: str
    excluded: str  # "gallery" (a gallery copy of a query) or "query and gallery" (a repeated image)
    style: str
    duplicate_style: str

    def as_dict(self) -> dict[str, str]:
        """Plain fields for JSON."""
        return asdict(self)


@dataclass
class RetrievalResult:
    """Every encoder's scores on one benchmark, with the items they were computed on."""

    benchmark: dict[str, Any]  # manifest summary: params, counts, fingerprint
    ks: list[int]
    queries: list[BenchmarkItem]
    gallery: list[BenchmarkItem]
    runs: dict[str, EncoderRun]
    rejects: list[Reject] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    embedded: list[BenchmarkItem] = field(default_factory=list)  # every scored image, in embedding order
    skipped_styles: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content_labels(self) -> bool:
        """Did the scored images carry content ids (so content Recall@1 was read)?"""
        return any(run.content_queries for run in self.runs.values())


def _decode_all(
    benchmark: RetrievalBenchmark, items: Sequence[BenchmarkItem]
) -> tuple[list[Image.Image | None], list[Reject]]:
    images: list[Image.Image | None] = []
    rejects: list[Reject] = []
    for item in items:
        try:
            images.extend(benchmark.load_images([item]))
        except BenchmarkSourceError:
            raise  # the source changed under the benchmark: nothing after this can be trusted
        except ValueError as err:  # an undecodable row is recorded and skipped, never fatal
            images.append(None)
            rejects.append(Reject(item.id, clean_cause(f"decode: {err}")))
    return images, rejects


def _embed(embedder: Embedder, images: Sequence[Image.Image], batch_size: int, name: str) -> np.ndarray:
    out = np.asarray(embedder.embed_images(list(images), batch_size=batch_size), dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != len(images):
        raise ValueError(f"encoder {name!r} returned shape {out.shape} for {len(images)} images")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)  # cosine similarity for every embedder


def find_duplicates(
    benchmark: RetrievalBenchmark, *, read_batch: int = 512
) -> tuple[list[bool], list[bool], list[Duplicate]]:
    """Which items stay queries / gallery once exact duplicates (same bytes, by sha256) are left out.

    A gallery image with the bytes of a query is left out of the gallery; of a repeated leave-one-out
    image only the first copy is kept. Returns (is query, is gallery, the duplicates) per item.
    """
    items = benchmark.items
    digests: list[str] = []
    for start in range(0, len(items), read_batch):
        digests += [
            hashlib.sha256(d).hexdigest() for d in benchmark.load_bytes(items[start : start + read_batch])
        ]
    is_query = [item.role in QUERY_ROLES for item in items]
    is_gallery = [item.role in GALLERY_ROLES for item in items]
    duplicates: list[Duplicate] = []
    first_both: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.role != "both":
            continue
        kept = first_both.setdefault(digests[i], i)
        if kept != i:
            is_query[i] = is_gallery[i] = False
            other = items[kept]
            duplicates.append(Duplicate(item.id, other.id, "query and gallery", item.style, other.style))
    query_of: dict[str, int] = {}
    for i in range(len(items)):
        if is_query[i]:
            query_of.setdefault(digests[i], i)
    for i, item in enumerate(items):
        if item.role == "gallery" and digests[i] in query_of:
            is_gallery[i] = False
            other = items[query_of[digests[i]]]
            duplicates.append(Duplicate(item.id, other.id, "gallery", item.style, other.style))
    return is_query, is_gallery, duplicates


def content_recall_at_1(
    queries: np.ndarray,
    gallery: np.ndarray,
    query_contents: Sequence[int | None],
    gallery_contents: Sequence[int | None],
    exclude: np.ndarray | None = None,
) -> tuple[float | None, int]:
    """Recall@1 with content ids as labels (``bench.metrics``), over queries with a same-content gallery image.

    Queries without a content id, or whose content no other gallery image has, are left out. Returns
    (Recall@1 or None, the number of queries it was read on).
    """
    q = np.array([-1 if c is None else int(c) for c in query_contents], dtype=np.int64)
    # Gallery images without a content id get labels no query has.
    g = np.array([-2 - j if c is None else int(c) for j, c in enumerate(gallery_contents)], dtype=np.int64)
    labels, counts = np.unique(g, return_counts=True)
    available = dict(zip(labels.tolist(), counts.tolist(), strict=True))
    same = np.array([available.get(int(c), 0) for c in q], dtype=np.int64)
    if exclude is not None:  # a query's own gallery copy is not another image of its content
        own = (exclude >= 0) & (g[np.clip(exclude, 0, None)] == q)
        same -= own.astype(np.int64)
    has = (q >= 0) & (same > 0)
    if not has.any():
        return None, 0
    scores = evaluate_embeddings(
        queries[has],
        gallery,
        q[has],
        g,
        [1],
        exclude=None if exclude is None else exclude[has],
        standard_map=False,
    )
    return scores.recall[1], int(has.sum())


def evaluate(
    benchmark: RetrievalBenchmark,
    encoders: dict[str, Embedder],
    *,
    ks: Sequence[int] = (1, 10, 100),
    batch_size: int = 32,
    read_batch: int = 512,
    standard_map: bool = True,
    keep_top: int = 10,
    progress: bool = False,
    exclude_duplicates: bool = False,
    keep_embeddings: bool = False,
) -> RetrievalResult:
    """Embed queries and gallery once per encoder and score them; undecodable rows are skipped and listed.

    Leave-one-out items (role ``both``) are queries ranked against every other gallery image.
    ``exclude_duplicates`` leaves exact duplicates of a query out of the gallery (``find_duplicates``).
    Where the rows carry content ids, content Recall@1 of the same embeddings is read too.
    ``keep_embeddings`` keeps each encoder's embeddings of ``RetrievalResult.embedded``.
    """
    if not encoders:
        raise ValueError("evaluate needs at least one encoder")
    if exclude_duplicates:
        is_query, is_gallery, duplicates = find_duplicates(benchmark, read_batch=read_batch)
    else:
        is_query = [item.role in QUERY_ROLES for item in benchmark.items]
        is_gallery = [item.role in GALLERY_ROLES for item in benchmark.items]
        duplicates = []
    used = [i for i in range(len(benchmark.items)) if is_query[i] or is_gallery[i]]
    items = [benchmark.items[i] for i in used]
    query_flags = np.array([is_query[i] for i in used], dtype=bool)
    gallery_flags = np.array([is_gallery[i] for i in used], dtype=bool)
    # Small benchmarks decode once for all encoders; large ones decode per read batch.
    cached = len(items) <= 4 * read_batch
    images, rejects = _decode_all(benchmark, items) if cached else ([], [])
    runs: dict[str, EncoderRun] = {}
    keep: np.ndarray | None = None
    for name, embedder in encoders.items():
        with step(f"retrieval: {name} on {len(items)} images", enabled=progress):
            started = time.perf_counter()
            parts: list[np.ndarray] = []
            ok = np.zeros(len(items), dtype=bool)
            for start in range(0, len(items), read_batch):
                if cached:
                    batch = images[start : start + read_batch]
                else:
                    batch, batch_rejects = _decode_all(benchmark, items[start : start + read_batch])
                    if keep is None:
                        rejects.extend(batch_rejects)
                good = [i for i, image in enumerate(batch) if image is not None]
                ok[[start + i for i in good]] = True
                if good:
                    decoded = [image for image in batch if image is not None]
                    parts.append(_embed(embedder, decoded, batch_size, name))
            keep = ok
            embeddings = np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)
            kept = [item for item, flag in zip(items, ok, strict=True) if flag]
            q_rows = np.flatnonzero(query_flags[ok])
            g_rows = np.flatnonzero(gallery_flags[ok])
            if not len(q_rows) or not len(g_rows):
                raise ValueError(
                    f"after skipping {len(rejects)} undecodable rows, no queries or no gallery remain"
                )
            # A leave-one-out query sits in the gallery too: it is never ranked against itself.
            gallery_position = {int(row): j for j, row in enumerate(g_rows)}
            own = np.array([gallery_position.get(int(row), -1) for row in q_rows], dtype=np.int64)
            exclude = own if (own >= 0).any() else None
            queries, gallery = embeddings[q_rows], embeddings[g_rows]
            q_items, g_items = [kept[i] for i in q_rows], [kept[i] for i in g_rows]
            q_labels = [item.label for item in q_items]
            g_labels = [item.label for item in g_items]
            scores = evaluate_embeddings(
                queries, gallery, q_labels, g_labels, ks, exclude=exclude, standard_map=standard_map
            )
            top = topk_search(queries, gallery, keep_top, exclude=exclude)
            content, content_queries = content_recall_at_1(
                queries,
                gallery,
                [item.content_id for item in q_items],
                [item.content_id for item in g_items],
                exclude,
            )
            runs[name] = EncoderRun(
                name,
                scores,
                top,
                int(embeddings.shape[1]),
                time.perf_counter() - started,
                content_recall=content,
                content_queries=content_queries,
                embeddings=embeddings if keep_embeddings else None,
            )
    assert keep is not None
    kept = [item for item, flag in zip(items, keep, strict=True) if flag]
    q_kept = query_flags[keep]
    g_kept = gallery_flags[keep]
    summary = {
        "source_fingerprint": benchmark.manifest["source_fingerprint"],
        "params": benchmark.manifest["params"],
        "counts": benchmark.manifest["counts"],
    }
    return RetrievalResult(
        benchmark=summary,
        ks=[int(k) for k in ks],
        queries=[item for item, flag in zip(kept, q_kept, strict=True) if flag],
        gallery=[item for item, flag in zip(kept, g_kept, strict=True) if flag],
        runs=runs,
        rejects=rejects,
        duplicates=duplicates,
        embedded=kept,
        skipped_styles=list(benchmark.manifest.get("skipped_styles", [])),
    )


def export_embeddings(
    result: RetrievalResult, benchmark: RetrievalBenchmark, folder: str | Path
) -> dict[str, Path]:
    """Each encoder's embeddings of the scored images as ``<encoder>.safetensors`` with a ``.parquet`` sidecar.

    The files are those of ``megastyle embed`` (``load_embeddings`` reads them): one row per image in
    ``result.embedded`` order, with its id, shard and row, style id and text, content id. ``split.parquet``
    beside them gives each row's role (query, gallery or both) and benchmark label. Needs
    ``evaluate(..., keep_embeddings=True)``.
    """
    from megastyle.encode.embed import EmbeddingSet, EmbedItem

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    shards = {Path(p).name: str(p) for p in benchmark.source_shards}
    items = [
        EmbedItem(
            id=item.id,
            path=shards.get(item.shard, item.shard),
            row=item.global_row,
            style_id=item.style_id,
            content_id=item.content_id,
            style_label=item.style,
        )
        for item in result.embedded
    ]
    queries = {item.global_row for item in result.queries}
    gallery = {item.global_row for item in result.gallery}
    roles = [
        "both" if row in queries and row in gallery else "query" if row in queries else "gallery"
        for row in (item.global_row for item in result.embedded)
    ]
    split = pa.table(
        {
            "id": [item.id for item in result.embedded],
            "role": roles,
            "label": [item.label for item in result.embedded],
            "style": [item.style for item in result.embedded],
            "style_id": pa.array([item.style_id for item in result.embedded], pa.int64()),
            "content_id": pa.array([item.content_id for item in result.embedded], pa.int64()),
        }
    )
    atomic_write_table(out / "split.parquet", split)
    files = {"split": out / "split.parquet"}
    for name, run in result.runs.items():
        if run.embeddings is None:
            raise ValueError(f"encoder {name!r} kept no embeddings: evaluate with keep_embeddings=True")
        info = {"encoder": name, "dim": run.dim, "count": len(items), "benchmark": result.benchmark["params"]}
        files[name] = EmbeddingSet(run.embeddings, items, info=info).save(
            out / f"{safe_name(name)}.safetensors"
        )
    return files


def safe_name(name: str) -> str:
    """An encoder name as a file name: letters, digits, ``-_.``; anything else becomes ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
