"""Stage 7, filter (optional): drop style groups whose images disagree; every style's score is recorded.

The mapped half runs on the workers: staging shards → per-image style embeddings, in bounded
memory. Each worker reads whole staging shards and returns only ``(id, style_id, embedding)`` rows,
so the driver never holds decoded images; it groups the embeddings by style and scores each group.
On a multi-node Ray cluster the workers read the shards from ``run_dir``, so it must be on shared
storage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from megastyle.curate.filter import StyleScore, color_texture_stats, decide_styles, score_group_embeddings
from megastyle.curate.runstate import StageDir
from megastyle.curate.stages.base import RunContext, Stage, StageResult
from megastyle.data import ImageDecodeError, Reject, ShardReader, atomic_write_json, list_shards

ImageEmbedder = Callable[[Sequence[Image.Image]], np.ndarray]
CHUNK = 64  # images decoded and embedded at once: bounds a worker's memory


@dataclass
class ShardEmbeddings:
    """One staging shard's rows as style embeddings; undecodable or unembeddable rows as rejects."""

    ids: list[str] = field(default_factory=list)
    style_ids: list[int] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def _embed_chunk(
    out: ShardEmbeddings, rows: list[tuple[str, int, Image.Image]], embed: ImageEmbedder
) -> None:
    try:
        vectors = np.asarray(embed([image for _, _, image in rows]), dtype=np.float32)
        if vectors.shape[0] != len(rows):
            raise ValueError(f"embedder returned {vectors.shape[0]} rows for {len(rows)} images")
        pairs = list(zip(rows, vectors, strict=True))
    except Exception:
        pairs = []  # one bad image must not sink the chunk: embed one by one, reject the failures
        for row in rows:
            try:
                pairs.append((row, np.asarray(embed([row[2]]), dtype=np.float32)[0]))
            except Exception as err:  # any embedder error becomes this row's reject
                out.rejects.append(Reject(row[0], f"filter: {type(err).__name__}: {err}"))
    for (row_id, style_id, _), vector in pairs:
        out.ids.append(row_id)
        out.style_ids.append(style_id)
        out.embeddings.append(vector)


def color_stats_embedder() -> ImageEmbedder:
    """The resource factory of the default filter embedder (training-free colour/texture statistics)."""
    return color_texture_stats


def embed_shards_stage(batch: Sequence[str], embed: ImageEmbedder) -> list[ShardEmbeddings]:
    """The stage function: each staging shard path in ``batch`` → its rows' style embeddings."""
    results = []
    for path in batch:
        out = ShardEmbeddings()
        rows: list[tuple[str, int, Image.Image]] = []
        for record in ShardReader(path):
            if record.style_id is None:
                out.rejects.append(Reject(record.id, "filter: no style_id; rows are grouped by style_id"))
                continue
            try:
                rows.append((record.id, record.style_id, record.pil_image()))
            except ImageDecodeError as err:
                out.rejects.append(Reject(record.id, f"filter: {err}"))
            if len(rows) == CHUNK:
                _embed_chunk(out, rows, embed)
                rows = []
        if rows:
            _embed_chunk(out, rows, embed)
        results.append(out)
    return results


def score_shard_embeddings(
    parts: Sequence[ShardEmbeddings], outlier_mads: float = 3.5, outlier_min_gap: float = 0.05
) -> list[StyleScore]:
    """One consistency score per style (first-seen order) from every shard's embeddings."""
    grouped: dict[int, list[np.ndarray]] = {}
    for part in parts:
        for style_id, vector in zip(part.style_ids, part.embeddings, strict=True):
            grouped.setdefault(style_id, []).append(vector)
    return [
        score_group_embeddings(style_id, np.stack(vectors).astype(np.float64), outlier_mads, outlier_min_gap)
        for style_id, vectors in grouped.items()
    ]


def run(ctx: RunContext, stage: StageDir) -> StageResult:
    """Score every style's consistency and write ``dropped.json`` (empty when the filter is off)."""
    section = ctx.cfg.filter
    if not section.enabled:
        atomic_write_json(stage.path / "dropped.json", [])
        return StageResult({"enabled": False})
    shards = [str(p) for p in list_shards(ctx.output_of("generate") / "shards")]
    mapped = ctx.engine.map_batches(embed_shards_stage, [[s] for s in shards], color_stats_embedder)
    parts = [part for batch in mapped for part in batch]
    rejects = [reject for part in parts for reject in part.rejects]
    scores = score_shard_embeddings(parts, section.outlier_mads, section.outlier_min_gap)
    result = decide_styles(scores, section)
    dropped = [{"style_id": d.style_id, "reason": d.reason} for d in result.dropped]
    atomic_write_json(stage.path / "dropped.json", dropped)
    atomic_write_json(stage.path / "scores.json", {str(s.style_id): s.mean_cosine for s in scores})
    stats = {"enabled": True, "embedder": section.embedder, "styles": len(scores), "dropped": len(dropped),
             "cut": result.cut}  # fmt: skip
    return StageResult(stats, rejects)


STAGE = Stage("filter", section=lambda cfg: cfg.filter, run=run)
