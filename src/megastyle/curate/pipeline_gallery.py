"""The prompt-gallery stages of ``megastyle curate``: dedup, balance, combine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.curate.balance import balance
from megastyle.curate.dedup import DedupReport, deduplicate, write_removed_pairs
from megastyle.curate.embedding import TextEmbedder
from megastyle.curate.generate import plan_images
from megastyle.curate.pipeline import KINDS, RunContext
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


def _embedder(ctx: RunContext) -> TextEmbedder:
    section = ctx.cfg.embedding
    return TextEmbedder(section.model_path, batch_size=section.batch_size, device=section.device)


def _dedup_stats(report: DedupReport) -> dict[str, Any]:
    return {
        "input": report.input_count,
        "removed": dict(report.removed_counts),
        "kept": len(report.kept_indices),
        "invalid": len(report.rejects),
    }


def stage_dedup(ctx: RunContext) -> None:
    """Exact, fuzzy and semantic dedup of each prompt kind; removed pairs kept for inspection."""
    stage = ctx.stage("03_dedup", {"dedup": ctx.cfg.dedup.model_dump(mode="json"),
                                   "embedding": ctx.cfg.embedding.model_dump(mode="json")}, "02_caption")  # fmt: skip
    if ctx.reuse_or_prepare(stage, "dedup"):
        return
    source = ctx.run_dir / "stages" / "02_caption"
    embedder = _embedder(ctx)
    stats: dict[str, Any] = {}
    rejects = []
    for kind in KINDS:
        table = pq.read_table(source / f"{kind}.parquet")
        texts = table.column("text").to_pylist()
        report = deduplicate(texts, ctx.cfg.dedup, embedder=embedder)
        kept = np.asarray(report.kept_indices, dtype=np.int64)
        atomic_write_table(stage.path / f"{kind}.parquet", table.take(pa.array(kept)))
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
    embedder = _embedder(ctx)
    stats: dict[str, Any] = {}
    for kind in KINDS:
        table = pq.read_table(source / f"{kind}.parquet")
        texts = table.column("text").to_pylist()
        if not texts:
            raise ValueError(f"balance: no {kind} prompts survived captioning and dedup; check the rejects")
        embeddings = embedder.encode(texts)
        np.save(stage.path / f"{kind}_embeddings.npy", embeddings)
        section = getattr(ctx.cfg.balance, kind).model_copy(update={"seed": ctx.cfg.seed})
        report = balance(embeddings, section)
        selected = np.sort(np.asarray(report.selected, dtype=np.int64))
        chosen = table.take(pa.array(selected)).to_pylist()
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
