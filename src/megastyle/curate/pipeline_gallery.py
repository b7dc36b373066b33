"""The prompt-gallery stages of ``megastyle curate``: dedup, balance, combine."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.curate.balance import balance
from megastyle.curate.dedup import DedupReport, write_removed_pairs
from megastyle.curate.dedup.stage import dedup_semantic, dedup_text_steps
from megastyle.curate.embedding import EngineTextEmbedder, TextEmbedderFactory
from megastyle.curate.engine import WorkerSpec
from megastyle.curate.generate import plan_images
from megastyle.curate.pipeline import KINDS, PLACEMENT, RunContext
from megastyle.curate.runstate import atomic_write_bytes, atomic_write_table, write_rejects
from megastyle.data import Reject

GALLERY_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.int64()),
        ("text", pa.string()),
        ("item_id", pa.string()),
        ("attributes_json", pa.string()),
    ]
)
PLAN_SCHEMA = pa.schema(
    [("style_id", pa.int64()), ("content_id", pa.int64()), ("style", pa.string()), ("content", pa.string()),
     ("seed", pa.int64())]
)  # fmt: skip


def _embedder(ctx: RunContext) -> EngineTextEmbedder:
    """Text embeddings mapped by the run's engine (Ray: an actor pool, one model per actor)."""
    section = ctx.cfg.embedding
    model = str(section.model_path) if section.model_path else None
    factory = TextEmbedderFactory(model, section.device, section.batch_size)
    return EngineTextEmbedder(ctx.engine, factory, section.chunk_size, section.spec())


def _dedup_stats(report: DedupReport) -> dict[str, Any]:
    return {
        "input": report.input_count,
        "removed": dict(report.removed_counts),
        "kept": len(report.kept_indices),
        "invalid": len(report.rejects),
    }


def _embed_kinds(ctx: RunContext, texts: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Both kinds' texts embedded in one engine call (one pool of model workers), split back by kind."""
    joined = [text for kind in KINDS for text in texts[kind]]
    vectors = _embedder(ctx).encode(joined)
    out, start = {}, 0
    for kind in KINDS:
        out[kind] = vectors[start : start + len(texts[kind])]
        start += len(texts[kind])
    return out


def stage_dedup(ctx: RunContext) -> None:
    """Exact, fuzzy and semantic dedup of each prompt kind; removed pairs kept for inspection.

    Exact and fuzzy run as global tasks; the semantic step's embeddings (both kinds in one engine
    call) are saved beside the survivors so the balance stage does not embed them again.
    """
    stage = ctx.stage("03_dedup", {"dedup": ctx.cfg.dedup.model_dump(mode="json"),
                                   "embedding": ctx.cfg.embedding.model_dump(mode="json", exclude=PLACEMENT)},
                      "02_caption")  # fmt: skip
    if ctx.reuse_or_prepare(stage, "dedup"):
        return
    source = ctx.run_dir / "stages" / "02_caption"
    config = ctx.cfg.dedup
    run_task = partial(ctx.engine.run_task, spec=WorkerSpec(1, ctx.cfg.ray.dedup_cpus))
    tables = {kind: pq.read_table(source / f"{kind}.parquet") for kind in KINDS}
    texts = {kind: tables[kind].column("text").to_pylist() for kind in KINDS}
    reports = {kind: dedup_text_steps(texts[kind], config, run_task) for kind in KINDS}
    if config.semantic.enabled:
        embedded = _embed_kinds(ctx, {kind: reports[kind].kept_texts for kind in KINDS})
    stats: dict[str, Any] = {}
    rejects = []
    for kind in KINDS:
        report = reports[kind]
        if config.semantic.enabled:
            kept_vectors = dedup_semantic(report, texts[kind], embedded[kind], config, run_task)
            np.save(stage.path / f"{kind}_embeddings.npy", kept_vectors)
        kept = np.asarray(report.kept_indices, dtype=np.int64)
        atomic_write_table(stage.path / f"{kind}.parquet", tables[kind].take(pa.array(kept)))
        write_removed_pairs(report, stage.path / f"removed_{kind}.jsonl")
        stats[kind] = _dedup_stats(report)
        rejects += [Reject(r.item, f"dedup[{kind}]: {r.cause}") for r in report.rejects]
    write_rejects(stage.rejects_path(), rejects)
    ctx.stats["dedup"] = stage.finish(stats)["stats"]


def stage_balance(ctx: RunContext) -> None:
    """Hierarchical k-means + balanced sampling of each kind to its target; writes the prompt gallery."""
    stage = ctx.stage("04_balance", ctx.cfg.balance, "03_dedup")
    if ctx.reuse_or_prepare(stage, "balance"):
        return
    source = ctx.run_dir / "stages" / "03_dedup"
    tables = {kind: pq.read_table(source / f"{kind}.parquet") for kind in KINDS}
    texts = {kind: tables[kind].column("text").to_pylist() for kind in KINDS}
    for kind in KINDS:
        if not texts[kind]:
            raise ValueError(f"balance: no {kind} prompts survived captioning and dedup; check the rejects")
    saved = {kind: source / f"{kind}_embeddings.npy" for kind in KINDS}
    if all(path.exists() for path in saved.values()):  # the semantic dedup step embedded these texts
        embedded = {kind: np.load(saved[kind]) for kind in KINDS}
    else:
        embedded = _embed_kinds(ctx, texts)
    stats: dict[str, Any] = {}
    for kind in KINDS:
        embeddings = embedded[kind]
        if len(embeddings) != len(texts[kind]):
            raise ValueError(f"balance: {len(embeddings)} {kind} embeddings for {len(texts[kind])} prompts")
        np.save(stage.path / f"{kind}_embeddings.npy", embeddings)
        section = getattr(ctx.cfg.balance, kind).model_copy(update={"seed": ctx.cfg.seed})
        # k-means sees every embedding at once: one task, placed where its CPUs/GPUs are.
        spec = WorkerSpec(1, ctx.cfg.ray.balance_cpus, ctx.cfg.ray.balance_gpus)
        report = ctx.engine.run_task(balance, embeddings, section, spec=spec)
        selected = np.sort(np.asarray(report.selected, dtype=np.int64))
        chosen = tables[kind].take(pa.array(selected)).to_pylist()
        gallery = [
            {
                "prompt_id": i,
                "text": row["text"],
                "item_id": row["item_id"],
                "attributes_json": row["attributes_json"],
            }
            for i, row in enumerate(chosen)
        ]
        atomic_write_table(
            stage.path / f"{kind}.parquet", pa.Table.from_pylist(gallery, schema=GALLERY_SCHEMA)
        )
        atomic_write_bytes(
            stage.path / f"{kind}_prompts.txt", "".join(g["text"] + "\n" for g in gallery).encode()
        )
        stats[kind] = report.to_dict()
    write_rejects(stage.rejects_path(), [])
    ctx.stats["balance"] = stage.finish(stats)["stats"]


def read_gallery(ctx: RunContext, kind: str) -> list[str]:
    """The balanced prompts of ``kind``, in gallery order."""
    return pq.read_table(ctx.run_dir / "stages" / "04_balance" / f"{kind}.parquet").column("text").to_pylist()


def stage_combine(ctx: RunContext) -> None:
    """Pair every style prompt with N distinct content prompts (seeded, content use spread evenly)."""
    stage = ctx.stage("05_combine", ctx.cfg.combine, "04_balance")
    if ctx.reuse_or_prepare(stage, "combine"):
        return
    styles, contents = read_gallery(ctx, "style"), read_gallery(ctx, "content")
    per_style = ctx.cfg.combine.contents_per_style
    if per_style > len(contents):
        raise ValueError(
            f"combine: {per_style} contents per style need at least {per_style} content prompts, "
            f"but the gallery has {len(contents)}; lower combine.contents_per_style or raise the content target"
        )
    plan = plan_images(styles, contents, per_style, seed=ctx.cfg.seed)
    rows = [
        {
            "style_id": p.style_id,
            "content_id": p.content_id,
            "style": p.style,
            "content": p.content,
            "seed": p.seed,
        }
        for p in plan
    ]
    atomic_write_table(stage.path / "plan.parquet", pa.Table.from_pylist(rows, schema=PLAN_SCHEMA))
    uses = np.bincount([p.content_id for p in plan], minlength=len(contents))
    stats = {
        "styles": len(styles),
        "contents": len(contents),
        "pairs": len(plan),
        "content_uses_min_max": [int(uses.min()), int(uses.max())],
    }
    write_rejects(stage.rejects_path(), [])
    ctx.stats["combine"] = stage.finish(stats)["stats"]
