"""Stage 4, balance: hierarchical k-means and balanced sampling of each kind to its target.

Writes the prompt gallery of each kind (``style.parquet``/``content.parquet`` and a plain
``*_prompts.txt``), in gallery order: a prompt's position is its id in the dataset.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.curate.balance import balance
from megastyle.curate.executor import WorkerSpec
from megastyle.curate.runstate import StageDir
from megastyle.curate.stages.base import KINDS, RunContext, Stage, StageResult
from megastyle.curate.stages.embedding import embed_kinds
from megastyle.data import atomic_write_table, atomic_write_text

GALLERY_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.int64()),
        ("text", pa.string()),
        ("item_id", pa.string()),
        ("attributes_json", pa.string()),
    ]
)


def read_gallery(ctx: RunContext, kind: str) -> list[str]:
    """The balanced prompts of ``kind``, in gallery order."""
    return pq.read_table(ctx.output_of("balance") / f"{kind}.parquet").column("text").to_pylist()


def run(ctx: RunContext, stage: StageDir) -> StageResult:
    """Select each kind's prompts and write its gallery."""
    source = ctx.output_of("dedup")
    tables = {kind: pq.read_table(source / f"{kind}.parquet") for kind in KINDS}
    texts = {kind: tables[kind].column("text").to_pylist() for kind in KINDS}
    for kind in KINDS:
        if not texts[kind]:
            raise ValueError(f"balance: no {kind} prompts survived captioning and dedup; check the rejects")
    saved = {kind: source / f"{kind}_embeddings.npy" for kind in KINDS}
    if all(path.exists() for path in saved.values()):  # the semantic dedup step embedded these texts
        embedded = {kind: np.load(saved[kind]) for kind in KINDS}
    else:
        embedded = embed_kinds(ctx, texts)
    stats = {}
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
        atomic_write_text(stage.path / f"{kind}_prompts.txt", "".join(g["text"] + "\n" for g in gallery))
        stats[kind] = report.to_dict()
    return StageResult(stats)


STAGE = Stage("balance", section=lambda cfg: cfg.balance, run=run)
