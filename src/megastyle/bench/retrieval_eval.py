"""StyleRetrieval evaluation: embed a benchmark's queries and gallery once per encoder and score them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from megastyle.bench.metrics import RetrievalScores, evaluate_embeddings
from megastyle.bench.retrieval import BenchmarkItem, BenchmarkSourceError, Embedder, RetrievalBenchmark
from megastyle.data import Reject
from megastyle.data.neighbours import TopK, topk_search


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
        runs[name] = EncoderRun(name, scores, top, int(embeddings.shape[1]), time.perf_counter() - started)
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
