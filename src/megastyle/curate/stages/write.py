"""Stage 8, write: the final MegaStyle-layout shards in ``run_dir/dataset``, the dataset card and a contact sheet."""

from __future__ import annotations

import json
import shutil
from typing import Any

from megastyle.curate.card import write_dataset_card
from megastyle.curate.runstate import StageDir
from megastyle.curate.stages.base import RunContext, Stage, StageResult
from megastyle.data import ShardReader, ShardWriter
from megastyle.report.contact_sheet import save_contact_sheet

DATASET = "dataset"  # the run folder's dataset folder, beside stages/


def _describe(backend: str, options: dict[str, Any]) -> str:
    model = options.get("model_path") or options.get("model")
    return f"{backend} ({model})" if model else backend


def _dataset_present(ctx: RunContext) -> bool:
    return any((ctx.run_dir / DATASET).glob("train-*.parquet"))


def run(ctx: RunContext, stage: StageDir) -> StageResult:
    """Copy the kept rows of the staging shards into the dataset shards; write the card and sheet."""
    section = ctx.cfg.write
    dataset_dir = ctx.run_dir / DATASET
    # An unfinished write leaves partial output: start the dataset folder afresh.
    if dataset_dir.exists():
        shutil.rmtree(dataset_dir)
    dataset_dir.mkdir(parents=True)
    dropped = {d["style_id"] for d in json.loads((ctx.output_of("filter") / "dropped.json").read_text())}
    reader = ShardReader(ctx.output_of("generate") / "shards")
    sheet: dict[int, tuple[str, list[Any]]] = {}
    rows = 0
    styles: set[int] = set()
    with ShardWriter(
        dataset_dir, rows_per_shard=section.shard_size, row_group_size=section.row_group_size
    ) as writer:
        for record in reader:
            if record.style_id in dropped:
                continue
            writer.write(record)
            rows += 1
            styles.add(record.style_id)
            if len(sheet) < section.sheet_styles or record.style_id in sheet:
                _, images = sheet.setdefault(record.style_id, (f"s{record.style_id}: {record.style}", []))
                if len(images) < section.sheet_columns:
                    images.append(record.pil_image())
    shards = len(writer.shards_written)  # after the writer closed: the last shard is flushed on exit
    sheet_path = (
        save_contact_sheet(list(sheet.values()), dataset_dir / "contact_sheet.png") if sheet else None
    )
    stats: dict[str, Any] = {
        "rows": rows,
        "styles": len(styles),
        "shards": shards,
        "dropped_styles": len(dropped),
    }
    ctx.stats["write"] = stats
    write_dataset_card(
        dataset_dir / "README.md",
        title=f"megastyle dataset ({ctx.run_dir.name})",
        summary=stats,
        stages=ctx.stats,
        backends={
            "caption": _describe(ctx.cfg.caption.backend, ctx.cfg.caption.options),
            "generate": _describe(ctx.cfg.generate.backend, ctx.cfg.generate.options),
            "text embedder": str(ctx.cfg.embedding.model_path or "all-MiniLM-L6-v2 (packaged)"),
            "engine": ctx.engine.name,
        },
        seed=ctx.cfg.seed,
        config_toml=ctx.cfg.to_toml(),
    )
    if sheet_path:
        stats["contact_sheet"] = str(sheet_path)
    return StageResult(stats)


STAGE = Stage("write", section=lambda cfg: cfg.write, run=run, outputs_present=_dataset_present)
