"""The output stages of ``megastyle curate``: generate, filter, write (shards, card, contact sheet)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.parquet as pq

from megastyle.curate.card import write_dataset_card
from megastyle.curate.filter import decide_styles
from megastyle.curate.filter_stage import color_stats_embedder, embed_shards_stage, score_shard_embeddings
from megastyle.curate.generate import PlannedImage, run_generate
from megastyle.curate.pipeline import RunContext, clear_dir
from megastyle.curate.runstate import atomic_write_json, read_rejects, write_rejects
from megastyle.data import ShardReader, ShardWriter, list_shards
from megastyle.report.contact_sheet import save_contact_sheet


def _read_plan(ctx: RunContext) -> list[PlannedImage]:
    table = pq.read_table(ctx.run_dir / "stages" / "05_combine" / "plan.parquet")
    return [PlannedImage(**row) for row in table.to_pylist()]


def stage_generate(ctx: RunContext) -> None:
    """Render the plan into staging shards; finished shards survive a kill and are reused."""
    section = ctx.cfg.generate
    stage = ctx.stage("06_generate", section, "05_combine")
    if ctx.reuse_or_prepare(stage, "generate"):
        return
    summary = run_generate(
        _read_plan(ctx),
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
    write_rejects(stage.rejects_path(), rejects)
    stats = {"planned": summary.planned, "rendered": summary.written, "rejected": len(rejects),
             "backend": section.backend, "backend_options": section.options,
             "image_size": section.image_size}  # fmt: skip
    ctx.stats["generate"] = stage.finish(stats)["stats"]


def stage_filter(ctx: RunContext) -> None:
    """Optionally drop style groups whose images disagree; records every style's score."""
    section = ctx.cfg.filter
    stage = ctx.stage("07_filter", section, "06_generate")
    if ctx.reuse_or_prepare(stage, "filter"):
        return
    if not section.enabled:
        atomic_write_json(stage.path / "dropped.json", [])
        write_rejects(stage.rejects_path(), [])
        ctx.stats["filter"] = stage.finish({"enabled": False})["stats"]
        return
    shards = [str(p) for p in list_shards(ctx.run_dir / "stages" / "06_generate" / "shards")]
    mapped = ctx.engine.map_batches(embed_shards_stage, [[s] for s in shards], color_stats_embedder)
    parts = [part for batch in mapped for part in batch]
    rejects = [reject for part in parts for reject in part.rejects]
    scores = score_shard_embeddings(parts, section.outlier_mads, section.outlier_min_gap)
    result = decide_styles(scores, section)
    dropped = [{"style_id": d.style_id, "reason": d.reason} for d in result.dropped]
    atomic_write_json(stage.path / "dropped.json", dropped)
    atomic_write_json(stage.path / "scores.json", {str(s.style_id): s.mean_cosine for s in scores})
    write_rejects(stage.rejects_path(), rejects)
    stats = {"enabled": True, "embedder": section.embedder, "styles": len(scores), "dropped": len(dropped),
             "cut": result.cut}  # fmt: skip
    ctx.stats["filter"] = stage.finish(stats)["stats"]


def _describe(backend: str, options: dict[str, Any]) -> str:
    model = options.get("model_path") or options.get("model")
    return f"{backend} ({model})" if model else backend


def stage_write(ctx: RunContext) -> None:
    """Write the final MegaStyle-layout shards, the dataset card and a contact sheet."""
    section = ctx.cfg.write
    stage = ctx.stage("08_write", section, "07_filter")
    dataset_dir = ctx.run_dir / "dataset"
    if ctx.reuse_or_prepare(stage, "write", outputs_present=any(dataset_dir.glob("train-*.parquet"))):
        return
    # An unfinished write leaves partial output: start the dataset folder afresh.
    clear_dir(dataset_dir)
    dropped = {
        d["style_id"] for d in json.loads((ctx.run_dir / "stages" / "07_filter" / "dropped.json").read_text())
    }
    reader = ShardReader(ctx.run_dir / "stages" / "06_generate" / "shards")
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
        shards = len(writer.shards_written)
    sheet_path = (
        save_contact_sheet(list(sheet.values()), dataset_dir / "contact_sheet.png") if sheet else None
    )
    stats = {"rows": rows, "styles": len(styles), "shards": shards, "dropped_styles": len(dropped)}
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
    write_rejects(stage.rejects_path(), [])
    if sheet_path:
        stats["contact_sheet"] = str(sheet_path)
    ctx.stats["write"] = stage.finish(stats)["stats"]
