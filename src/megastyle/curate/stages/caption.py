"""Stage 2, caption: a style prompt for every style-pool image, a content prompt for every content-pool image.

Both pools are captioned part by part in one engine call (one loaded captioner per worker); a
finished part is a file and is never recomputed, so a killed run resumes inside the stage.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from megastyle.curate.caption import load_captioner
from megastyle.curate.caption.batch import caption_batch
from megastyle.curate.executor import map_parts
from megastyle.curate.items import Caption, PoolItem
from megastyle.curate.runstate import StageDir
from megastyle.curate.stages.base import KINDS, RunContext, Stage, StageResult
from megastyle.curate.stages.ingest import items_from_table
from megastyle.data import Reject, atomic_write_table

CAPTION_SCHEMA = pa.schema(
    [("item_id", pa.string()), ("kind", pa.string()), ("text", pa.string()), ("attributes_json", pa.string()),
     ("error", pa.string()), ("attempts", pa.int32()), ("backend", pa.string())]
)  # fmt: skip


def captions_to_table(captions: list[Caption]) -> pa.Table:
    """Captions as a table."""
    rows = [
        {"item_id": c.item_id, "kind": c.kind, "text": c.text, "attributes_json": c.attributes_json,
         "error": c.error, "attempts": c.attempts, "backend": c.backend}
        for c in captions
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=CAPTION_SCHEMA)


def _part_path(stage: StageDir, kind: str, index: int) -> Path:
    return stage.path / kind / f"part-{index:05d}.parquet"


def run(ctx: RunContext, stage: StageDir) -> StageResult:
    """Caption every ingested item; write the captioned ones per kind, the failures as rejects."""
    section = ctx.cfg.caption
    ingest_dir = ctx.output_of("ingest")
    factory = partial(load_captioner, section.backend, **section.options)
    parts: dict[str, list[list[PoolItem]]] = {}
    todo: list[tuple[tuple[str, int], list[tuple[str, PoolItem]]]] = []
    for kind in KINDS:
        items = items_from_table(pq.read_table(ingest_dir / f"{kind}.parquet"))
        parts[kind] = [items[i : i + section.part_size] for i in range(0, len(items), section.part_size)]
        todo += [
            ((kind, i), [(kind, item) for item in part])
            for i, part in enumerate(parts[kind])
            if not _part_path(stage, kind, i).exists()
        ]
    total = sum(len(part) for kind in KINDS for part in parts[kind])
    done_before = total - sum(len(part) for _, part in todo)
    with ctx.track(f"curate: caption [{section.backend}]", total, done_before) as progress:
        mapped = map_parts(
            ctx.engine, caption_batch, todo, section.batch_size, factory, progress.advance, section.spec()
        )
        for (kind, index), results in mapped:
            captions = [caption for batch in results for caption in batch]
            atomic_write_table(_part_path(stage, kind, index), captions_to_table(captions))
    stats = {}
    rejects: list[Reject] = []
    for kind in KINDS:
        tables = [pq.read_table(_part_path(stage, kind, i)) for i in range(len(parts[kind]))]
        table = pa.concat_tables(tables) if tables else CAPTION_SCHEMA.empty_table()
        rows = table.to_pylist()
        ok = [r for r in rows if r["text"] is not None and r["error"] is None]
        rejects += [Reject(r["item_id"], f"caption[{kind}]: {r['error']}") for r in rows if r not in ok]
        atomic_write_table(stage.path / f"{kind}.parquet", pa.Table.from_pylist(ok, schema=CAPTION_SCHEMA))
        stats[kind] = {"captioned": len(ok), "failed": len(rows) - len(ok), "backend": section.backend}
    return StageResult(stats, rejects)


STAGE = Stage("caption", section=lambda cfg: cfg.caption, run=run, draws_progress=True)
