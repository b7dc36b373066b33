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
from megastyle.data import Reject, ShardReader, StyleIndex, build_style_index, decode_image
from megastyle.data.neighbours import TopK, topk_search
from megastyle.progress import step

FORMAT = "megastyle_style_retrieval"
FORMAT_VERSION = 1
MANIFEST_NAME = "benchmark.json"
ROWS_NAME = "rows.parquet"
HELDOUT_NAME = "heldout_styles.json"


class BenchmarkSourceError(ValueError):
    """The benchmark's source shards are missing or differ from those it was built from."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark image, referenced by its place in the source shards."""

    role: str  # "query" or "gallery"
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
        """Query items in benchmark order."""
        return [item for item in self.items if item.role == "query"]

    @property
    def gallery(self) -> list[BenchmarkItem]:
        """Gallery items in benchmark order."""
        return [item for item in self.items if item.role == "gallery"]

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

    def load_images(self, items: Sequence[BenchmarkItem]) -> list[Image.Image]:
        """Decode the images of ``items`` (ImageDecodeError names the row; an id mismatch is an error)."""
        reader = self.reader()
        images = []
        for item in items:
            row = reader.get_row(item.global_row, columns=["id", "image"])
            if row["id"] != item.id:
                raise BenchmarkSourceError(
                    f"row {item.global_row} of the source is {row['id']!r}, the benchmark expects {item.id!r}"
                )
            images.append(decode_image((row["image"] or {}).get("bytes"), item=item.id))
        return images

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


@dataclass
class RetrievalResult:
    """Every encoder's scores on one benchmark, with the items they were computed on."""

    benchmark: dict[str, Any]  # manifest summary: params, counts, fingerprint
    ks: list[int]
    queries: list[BenchmarkItem]
    gallery: list[BenchmarkItem]
    runs: dict[str, EncoderRun]
    rejects: list[Reject] = field(default_factory=list)


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
            rejects.append(Reject(item.id, f"decode: {err}"))
    return images, rejects


def _embed(embedder: Embedder, images: Sequence[Image.Image], batch_size: int, name: str) -> np.ndarray:
    out = np.asarray(embedder.embed_images(list(images), batch_size=batch_size), dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != len(images):
        raise ValueError(f"encoder {name!r} returned shape {out.shape} for {len(images)} images")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)  # cosine similarity for every embedder


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
) -> RetrievalResult:
    """Embed queries and gallery once per encoder and score them; undecodable rows are skipped and listed."""
    if not encoders:
        raise ValueError("evaluate needs at least one encoder")
    items = benchmark.items
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
            is_query = np.array([item.role == "query" for item in kept], dtype=bool)
            if is_query.all() or not is_query.any():
                raise ValueError(
                    f"after skipping {len(rejects)} undecodable rows, no queries or no gallery remain"
                )
            queries, gallery = embeddings[is_query], embeddings[~is_query]
            q_labels = [item.label for item in kept if item.role == "query"]
            g_labels = [item.label for item in kept if item.role == "gallery"]
            scores = evaluate_embeddings(queries, gallery, q_labels, g_labels, ks, standard_map=standard_map)
            top = topk_search(queries, gallery, keep_top)
            runs[name] = EncoderRun(
                name, scores, top, int(embeddings.shape[1]), time.perf_counter() - started
            )
    assert keep is not None
    kept = [item for item, flag in zip(items, keep, strict=True) if flag]
    summary = {
        "source_fingerprint": benchmark.manifest["source_fingerprint"],
        "params": benchmark.manifest["params"],
        "counts": benchmark.manifest["counts"],
    }
    return RetrievalResult(
        benchmark=summary,
        ks=[int(k) for k in ks],
        queries=[item for item in kept if item.role == "query"],
        gallery=[item for item in kept if item.role == "gallery"],
        runs=runs,
        rejects=rejects,
    )
