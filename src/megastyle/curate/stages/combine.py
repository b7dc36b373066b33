"""Stage 5, combine: pair every style prompt with N distinct content prompts (seeded, content use even)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from megastyle.curate.generate import plan_images
from megastyle.curate.runstate import StageDir
from megastyle.curate.stages.balance import read_gallery
from megastyle.curate.stages.base import RunContext, Stage, StageResult
from megastyle.data import atomic_write_table

PLAN_SCHEMA = pa.schema(
    [("style_id", pa.int64()), ("content_id", pa.int64()), ("style", pa.string()), ("content", pa.string()),
     ("seed", pa.int64())]
)  # fmt: skip


def run(ctx: RunContext, stage: StageDir) -> StageResult:
    """Write ``plan.parquet``: one row per image to render."""
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
    return StageResult(stats)


STAGE = Stage("combine", section=lambda cfg: cfg.combine, run=run)
