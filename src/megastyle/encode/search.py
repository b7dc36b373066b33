"""Style search over an embedded collection: a FAISS index (or exact numpy search), top-k, an HTML page.

An index folder holds ``collection.safetensors`` (+ ``.parquet``: the embeddings file format of
``megastyle.encode.embed``), ``index.json`` and, for approximate indexes, ``index.faiss``. Exact
search (``flat``) rebuilds its ``IndexFlatIP`` from the embeddings on load, so nothing is stored
twice. Without faiss (the optional ``search`` extra) exact search runs in torch and approximate
kinds are refused with a clear error.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from megastyle.data import ShardReader, atomic_write_text, decode_image
from megastyle.data.neighbours import topk_search
from megastyle.encode.embed import EmbeddingSet, EmbedItem
from megastyle.progress import track

IndexKind = Literal["flat", "hnsw", "ivf"]
COLLECTION_NAME = "collection.safetensors"
FAISS_NAME = "index.faiss"
META_NAME = "index.json"


def faiss_available() -> bool:
    """Is the optional faiss package importable?"""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class SearchHit:
    """One result: rank (1-based), row in the collection, its id, cosine score and image source."""

    rank: int
    index: int
    id: str
    score: float
    item: EmbedItem


class SearchIndex:
    """Inner-product (cosine) search over L2-normalised embeddings."""

    def __init__(
        self,
        collection: EmbeddingSet,
        *,
        kind: IndexKind = "flat",
        backend: Literal["auto", "faiss", "numpy"] = "auto",
        hnsw_m: int = 32,
        ef_search: int = 128,
        ivf_lists: int | None = None,
        nprobe: int = 16,
        _faiss_index: Any = None,
    ) -> None:
        embeddings = np.ascontiguousarray(collection.embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) == 0:
            raise ValueError(f"search needs a non-empty (n, d) embedding matrix, got {embeddings.shape}")
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        self.embeddings = embeddings / np.where(norms > 0, norms, 1.0)
        self.collection = collection
        self.kind: IndexKind = kind
        use_faiss = faiss_available() if backend == "auto" else backend == "faiss"
        if use_faiss and not faiss_available():
            raise ImportError("backend='faiss' needs faiss-cpu: pip install 'megastyle[search]'")
        if kind != "flat" and not use_faiss:
            raise ImportError(f"index kind {kind!r} needs faiss-cpu (pip install 'megastyle[search]')")
        self.backend = "faiss" if use_faiss else "numpy"
        self.params = {"hnsw_m": hnsw_m, "ef_search": ef_search, "ivf_lists": ivf_lists, "nprobe": nprobe}
        self._index = _faiss_index
        if self.backend == "faiss" and self._index is None:
            self._index = self._build_faiss()
        if self.backend == "faiss":
            self._set_search_params()

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def dim(self) -> int:
        """Embedding width."""
        return int(self.embeddings.shape[1])

    def _build_faiss(self) -> Any:
        import faiss

        d = self.dim
        if self.kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, int(self.params["hnsw_m"]), faiss.METRIC_INNER_PRODUCT)
        else:
            # ~4·√n lists, at most n / 39 so every list gets enough training points.
            lists = self.params["ivf_lists"] or max(1, min(int(4 * len(self) ** 0.5), len(self) // 39))
            self.params["ivf_lists"] = lists
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, int(lists), faiss.METRIC_INNER_PRODUCT)
            index.train(self.embeddings)
        index.add(self.embeddings)
        return index

    def _set_search_params(self) -> None:
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = int(self.params["ef_search"])
        elif self.kind == "ivf":
            self._index.nprobe = int(self.params["nprobe"])

    def search(self, queries: np.ndarray, k: int = 10) -> list[list[SearchHit]]:
        """Top-k hits per query embedding (scores = cosine; exact for ``flat``)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.shape[1] != self.dim:
            raise ValueError(f"query embeddings have dim {q.shape[1]}, the index has {self.dim}")
        q = q / np.where((n := np.linalg.norm(q, axis=1, keepdims=True)) > 0, n, 1.0)
        k = min(k, len(self))
        if self.backend == "faiss":
            scores, indices = self._index.search(q, k)
        else:
            top = topk_search(q, self.embeddings, k)
            scores, indices = top.scores, top.indices
        items = self.collection.items
        return [
            [
                SearchHit(rank + 1, int(i), items[int(i)].id, float(s), items[int(i)])
                for rank, (s, i) in enumerate(zip(row_scores, row_indices, strict=True))
                if i >= 0  # faiss pads with -1 when an approximate index finds fewer than k
            ]
            for row_scores, row_indices in zip(scores, indices, strict=True)
        ]

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the collection, the parameters and (approximate kinds) the faiss index."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        EmbeddingSet(self.embeddings, self.collection.items, self.collection.info).save(out / COLLECTION_NAME)
        if self.backend == "faiss" and self.kind != "flat":
            import faiss

            faiss.write_index(self._index, str(out / FAISS_NAME))
        meta = {
            "kind": self.kind,
            "backend": self.backend,
            "dim": self.dim,
            "count": len(self),
            **self.params,
        }
        (out / META_NAME).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return out

    @classmethod
    def load(
        cls, folder: str | os.PathLike[str], *, backend: Literal["auto", "faiss", "numpy"] = "auto"
    ) -> SearchIndex:
        """Read an index folder written by ``save``."""
        root = Path(folder)
        meta_path = root / META_NAME
        if not meta_path.is_file():
            raise FileNotFoundError(f"{root} holds no {META_NAME}: not a search index folder")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        collection = EmbeddingSet.load(root / COLLECTION_NAME)
        faiss_index = None
        if meta["kind"] != "flat":
            if not faiss_available():
                raise ImportError(f"{root} is a {meta['kind']} faiss index: install faiss-cpu to read it")
            import faiss

            faiss_index = faiss.read_index(str(root / FAISS_NAME))
            if faiss_index.ntotal != len(collection.items):
                raise ValueError(
                    f"{root}: faiss index holds {faiss_index.ntotal} vectors, collection {len(collection.items)}"
                )
        params = {k: meta[k] for k in ("hnsw_m", "ef_search", "ivf_lists", "nprobe")}
        backend = backend if meta["kind"] == "flat" else "faiss"
        return cls(collection, kind=meta["kind"], backend=backend, _faiss_index=faiss_index, **params)


def build_index(
    embeddings: np.ndarray | EmbeddingSet | str | os.PathLike[str],
    ids: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    *,
    kind: IndexKind = "flat",
    **options: Any,
) -> SearchIndex:
    """An index from an embeddings file, an ``EmbeddingSet``, or raw arrays + ids (+ image paths)."""
    if isinstance(embeddings, str | os.PathLike):
        collection = EmbeddingSet.load(embeddings)
    elif isinstance(embeddings, EmbeddingSet):
        collection = embeddings
    else:
        array = np.asarray(embeddings, dtype=np.float32)
        ids = list(ids) if ids is not None else [str(i) for i in range(len(array))]
        paths = list(sources) if sources is not None else [""] * len(array)
        if not len(ids) == len(paths) == len(array):
            raise ValueError(
                f"{len(array)} embeddings, {len(ids)} ids and {len(paths)} sources differ in length"
            )
        collection = EmbeddingSet(array, [EmbedItem(id=i, path=p) for i, p in zip(ids, paths, strict=True)])
    return SearchIndex(collection, kind=kind, **options)


class ImageSource:
    """Loads a collection item's image: a file, or a shard row (checked against the item id)."""

    def __init__(self) -> None:
        self._readers: dict[str, ShardReader] = {}

    def _reader(self, path: str) -> ShardReader:
        if path not in self._readers:
            self._readers[path] = ShardReader(path, columns=["id", "image"])
        return self._readers[path]

    def load(self, item: EmbedItem) -> Image.Image:
        """Decode ``item``'s image (ImageDecodeError / ValueError name the item)."""
        if item.row is None:
            return decode_image(Path(item.path).read_bytes(), item=item.id)
        # embed numbers shard rows over the whole shard folder; a single-file source numbers locally.
        for candidate in (str(Path(item.path).parent), item.path):
            try:
                row = self._reader(candidate).get_row(int(item.row))
            except (IndexError, FileNotFoundError, ValueError):
                continue
            if row["id"] == item.id:
                return decode_image((row["image"] or {}).get("bytes"), item=item.id)
        raise ValueError(f"{item.id}: row {item.row} of {item.path} no longer holds this item")


def _thumbnail_uri(image: Image.Image, size: int) -> str:
    thumb = image.convert("RGB")
    thumb.thumbnail((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


MAX_RESULTS_PER_PAGE = 1000


def paginate(hits: Sequence[Sequence[SearchHit]], max_results: int = MAX_RESULTS_PER_PAGE) -> list[list[int]]:
    """Query indices per page: whole queries, at most ``max_results`` results a page (ValueError when one
    query alone has more)."""
    pages: list[list[int]] = [[]]
    count = 0
    for q, row in enumerate(hits):
        if len(row) > max_results:
            raise ValueError(f"query {q} has {len(row)} results, more than the page limit of {max_results}")
        if pages[-1] and count + len(row) > max_results:
            pages.append([])
            count = 0
        pages[-1].append(q)
        count += len(row)
    return pages


def page_paths(path: str | os.PathLike[str], count: int) -> list[Path]:
    """``search.html``, then ``search-2.html``, ``search-3.html`` ... beside it."""
    first = Path(path)
    return [first] + [first.with_name(f"{first.stem}-{i}{first.suffix}") for i in range(2, count + 1)]


def write_search_pages(
    path: str | os.PathLike[str],
    queries: Sequence[tuple[str, Image.Image]],
    hits: Sequence[Sequence[SearchHit]],
    *,
    max_results: int = MAX_RESULTS_PER_PAGE,
    thumb: int = 128,
    title: str = "megastyle style search",
    skipped: Sequence[tuple[str, str]] = (),
    progress: bool = False,
) -> list[Path]:
    """The results as one page, or as numbered pages (linked to each other) of at most ``max_results``."""
    groups = paginate(hits, max_results)
    paths = page_paths(path, len(groups))
    total = sum(len(row) for row in hits)
    with track("search page", total, enabled=progress and total > 0) as bar:
        for number, (group, page) in enumerate(zip(groups, paths, strict=True), start=1):
            nav = ""
            if len(groups) > 1:
                links = " ".join(
                    f"<a href='{html.escape(p.name)}'>{i}</a>" if i != number else f"<b>{i}</b>"
                    for i, p in enumerate(paths, start=1)
                )
                nav = f"<p>page {number} of {len(groups)}: {links}</p>"
            write_search_html(
                page,
                [queries[q] for q in group],
                [hits[q] for q in group],
                thumb=thumb,
                title=title,
                skipped=skipped if number == 1 else (),
                nav=nav,
                advance=bar.advance,
            )
    return paths


def write_search_html(
    path: str | os.PathLike[str],
    queries: Sequence[tuple[str, Image.Image]],
    hits: Sequence[Sequence[SearchHit]],
    *,
    thumb: int = 128,
    title: str = "megastyle style search",
    skipped: Sequence[tuple[str, str]] = (),
    nav: str = "",
    advance: Callable[[int], None] | None = None,
) -> Path:
    """One self-contained page: per query its image and the top hits (inline thumbnails, scores, ids).

    ``skipped`` (query name, cause) are listed at the top; ``advance(1)`` is called per result written.
    """
    source = ImageSource()
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1.5rem}.row{display:flex;gap:8px;margin:1rem 0}"
        "figure{margin:0;font-size:12px;width:" + str(thumb) + "px;overflow-wrap:anywhere}"
        ".q img{outline:3px solid #2a5bd7}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        nav,
    ]
    if skipped:
        entries = "".join(f"<li>{html.escape(name)}: {html.escape(cause)}</li>" for name, cause in skipped)
        parts.append(f"<p>Query images skipped (unreadable):</p><ul class='skipped'>{entries}</ul>")
    for (name, image), row in zip(queries, hits, strict=True):
        parts.append(f"<h2>{html.escape(name)}</h2><div class='row'>")
        parts.append(
            f"<figure class='q'><img src='{_thumbnail_uri(image, thumb)}'><figcaption>query</figcaption></figure>"
        )
        for hit in row:
            try:
                src = _thumbnail_uri(source.load(hit.item), thumb)
                img = f"<img src='{src}' alt='{html.escape(hit.id)}'>"
            except (OSError, ValueError) as err:  # a missing image must not lose the other results
                img = f"<div>image unavailable: {html.escape(str(err))}</div>"
            label = f"<br>{html.escape(hit.item.style_label)}" if hit.item.style_label else ""
            parts.append(
                f"<figure>{img}<figcaption>#{hit.rank} {hit.score:.3f}<br>{html.escape(hit.id)}{label}"
                "</figcaption></figure>"
            )
            if advance is not None:
                advance(1)
        parts.append("</div>")
    parts.append(nav + "</body></html>")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(parts))
    return out
