"""Stage 6, generate: render the plan into staging shards; finished shards survive a kill and are reused."""

from __future__ import annotations

import pyarrow.parquet as pq

from megastyle.curate.generate import PlannedImage, run_generate
from megastyle.curate.runstate import StageDir, read_rejects
from megastyle.curate.stages.base import RunContext, Stage, StageResult


def read_plan(ctx: RunContext) -> list[PlannedImage]:
    """The combine stage's plan, one ``PlannedImage`` per image."""
    table = pq.read_table(ctx.output_of("combine") / "plan.parquet")
    return [PlannedImage(**row) for row in table.to_pylist()]


def run(ctx: RunContext, stage: StageDir) -> StageResult:
    """Render every planned image with the configured backend into ``shards/``."""
    section = ctx.cfg.generate
    summary = run_generate(
        read_plan(ctx),
        stage.path / "shards",
        backend=section.backend,
        backend_options=section.options,
        size=section.image_size,
        shard_size=section.staging_shard_rows,
        row_group_size=ctx.cfg.write.row_group_size,
        batch_size=section.batch_size,
        engine=ctx.engine,
        spec=section.spec(),
        show_progress=ctx.cfg.progress,
    )
    rejects = [
        r for path in sorted((stage.path / "shards" / "rejects").glob("*.jsonl")) for r in read_rejects(path)
    ]
    stats = {"planned": summary.planned, "rendered": summary.written, "rejected": len(rejects),
             "backend": section.backend, "backend_options": section.options,
             "image_size": section.image_size}  # fmt: skip
    return StageResult(stats, rejects)


STAGE = Stage("generate", section=lambda cfg: cfg.generate, run=run, draws_progress=True)
