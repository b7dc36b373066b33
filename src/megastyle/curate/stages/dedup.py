"""Stage 3, dedup: exact, fuzzy and semantic dedup of each prompt kind; removed pairs kept for inspection.

Exact and fuzzy run as global tasks; the semantic step's embeddings (both kinds in one engine
call) are saved beside the survivors so the balance stage does not embed them again.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.curate.dedup import DedupReport, write_removed_pairs
from megastyle.curate.dedup.steps import dedup_semantic, dedup_text_steps
from megastyle.curate.executor import WorkerSpec
from megastyle.curate.runstate import StageDir
from megastyle.curate.stages.base import KINDS, RunContext, Stage, StageResult, section_payload
from megastyle.curate.stages.embedding import embed_kinds
from megastyle.data import Reject, atomic_write_table


def _dedup_stats(report: DedupReport) -> dict[str, Any]:
    return {
        "input": report.input_count,
        "removed": dict(report.removed_counts),
        "kept": len(report.kept_indices),
        "invalid": len(report.rejects),
    }


def run(ctx: RunContext, stage: StageDir) -> StageResult:
    """Write each kind's surviving captions (and their embeddings) and the removed pairs."""
    source = ctx.output_of("caption")
    config = ctx.cfg.dedup
    run_task = partial(ctx.engine.run_task, spec=WorkerSpec(1, ctx.cfg.ray.dedup_cpus))
    tables = {kind: pq.read_table(source / f"{kind}.parquet") for kind in KINDS}
    texts = {kind: tables[kind].column("text").to_pylist() for kind in KINDS}
    reports = {kind: dedup_text_steps(texts[kind], config, run_task) for kind in KINDS}
    if config.semantic.enabled:
        embedded = embed_kinds(ctx, {kind: reports[kind].kept_texts for kind in KINDS})
    stats = {}
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
    return StageResult(stats, rejects)


STAGE = Stage(
    "dedup",
    section=lambda cfg: {"dedup": section_payload(cfg.dedup), "embedding": section_payload(cfg.embedding)},
    run=run,
)
