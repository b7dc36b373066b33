"""Text embeddings mapped by a curate run's engine: fixed chunks of prompts over workers that load the
model once (Ray: an actor pool). Shared by the dedup and balance stages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from megastyle.curate.executor import Engine, WorkerSpec
from megastyle.curate.stages.base import KINDS, RunContext
from megastyle.prompts.embedding import TextEmbedder, TextEmbedderFactory, check_texts


def embed_stage(batch: Sequence[str], embedder: TextEmbedder) -> np.ndarray:
    """The embedding stage function: one chunk of texts → float32 rows."""
    return embedder.encode(batch)


class EngineTextEmbedder:
    """``encode`` through an engine: fixed chunks of texts mapped over workers that load the model once.

    The chunking is the same on every engine, so local and Ray runs embed identical batches.
    """

    def __init__(
        self,
        engine: Engine,
        factory: TextEmbedderFactory,
        chunk_size: int = 4096,
        spec: WorkerSpec | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.engine, self.factory, self.chunk_size, self.spec = engine, factory, chunk_size, spec

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` → float32 ``(len(texts), dim)`` in input order."""
        checked = check_texts(texts)
        chunks = [checked[i : i + self.chunk_size] for i in range(0, len(checked), self.chunk_size)]
        if not chunks:
            return self.factory().encode([])
        parts = list(self.engine.map_batches(embed_stage, chunks, self.factory, self.spec))
        return np.concatenate(parts, axis=0)


def engine_embedder(ctx: RunContext) -> EngineTextEmbedder:
    """The run's text embedder, mapped by its engine (Ray: an actor pool, one model per actor)."""
    section = ctx.cfg.embedding
    model = str(section.model_path) if section.model_path else None
    factory = TextEmbedderFactory(model, section.device, section.batch_size)
    return EngineTextEmbedder(ctx.engine, factory, section.chunk_size, section.spec())


def embed_kinds(ctx: RunContext, texts: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Both kinds' texts embedded in one engine call (one pool of model workers), split back by kind."""
    joined = [text for kind in KINDS for text in texts[kind]]
    vectors = engine_embedder(ctx).encode(joined)
    out, start = {}, 0
    for kind in KINDS:
        out[kind] = vectors[start : start + len(texts[kind])]
        start += len(texts[kind])
    return out
