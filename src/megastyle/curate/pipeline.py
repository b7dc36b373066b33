"""``megastyle curate``: pools → captions → dedup → balance → combine → generate → filter → write.

Each stage reads the previous stage's files and leaves its own under ``run_dir/stages/NN_name``
with a manifest written last (see ``runstate``). A stage's key hashes its config section and its
input's key, so ``--resume`` redoes exactly the stages whose inputs or settings changed and a
finished run does nothing. Per-item stages (caption, generate) also resume inside the stage,
part by part. Stage functions are plain functions over batches, mapped by an ``Engine``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from megastyle.curate.caption import load_captioner
from megastyle.curate.caption.stage import caption_stage
from megastyle.curate.config import CurateConfig
from megastyle.curate.engine import Engine, LocalEngine, make_engine, map_parts
from megastyle.curate.items import Caption, PoolItem
from megastyle.curate.pools import iter_pools
from megastyle.curate.runstate import StageDir, atomic_write_table, fingerprint, read_rejects, write_rejects
from megastyle.data import Reject

console = Console(stderr=True)
KINDS = ("style", "content")
# Worker counts and reservations decide where work runs, not what it produces: not in stage keys.
PLACEMENT = {"workers", "num_cpus", "num_gpus"}


class CurateStateError(RuntimeError):
    """The run folder holds state that this invocation must not silently overwrite."""


@dataclass
class RunContext:
    """What every stage needs: the config, the run folder, the engine and the stage keys so far."""

    cfg: CurateConfig
    run_dir: Path
    engine: Engine
    keys: dict[str, str] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    def stage(self, name: str, section: Any, upstream: str | None) -> StageDir:
        """The folder of stage ``name`` keyed by its config ``section`` and the ``upstream`` stage key."""
        # Worker counts and reservations decide where work runs, not what it produces.
        placement = {"workers", "num_cpus", "num_gpus"}
        payload = (
            section.model_dump(mode="json", exclude=placement) if hasattr(section, "model_dump") else section
        )
        key = fingerprint([name, payload, self.keys.get(upstream) if upstream else None, self.cfg.seed])
        self.keys[name] = key
        return StageDir(self.run_dir, name, key)

    def reuse_or_prepare(self, stage: StageDir, stats_key: str, outputs_present: bool = True) -> bool:
        """True (its stats recorded) when ``stage`` already finished; otherwise ready its folder, False."""
        if outputs_present and stage.is_done():
            self.stats[stats_key] = stage.stats()
            return True
        stage.prepare()
        return False

    def progress(self) -> Progress:
        """A progress display for one stage."""
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        return Progress(*columns, console=console, disable=not self.cfg.progress)


# ---------------------------------------------------------------- tables of items and captions

ITEM_SCHEMA = pa.schema(
    [("id", pa.string()), ("source", pa.string()), ("path", pa.string()), ("image", pa.binary()),
     ("caption", pa.string()), ("member", pa.string())]
)  # fmt: skip
CAPTION_SCHEMA = pa.schema(
    [("item_id", pa.string()), ("kind", pa.string()), ("text", pa.string()), ("attributes_json", pa.string()),
     ("error", pa.string()), ("attempts", pa.int32()), ("backend", pa.string())]
)  # fmt: skip


def items_to_table(items: list[PoolItem]) -> pa.Table:
    """Pool items as a table (image bytes only for items without a file path or container reference)."""
    rows = [
        {"id": i.id, "source": i.source, "path": i.path, "image": None if i.path else i.image_bytes,
         "caption": i.caption, "member": i.member}
        for i in items
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)


def items_from_table(table: pa.Table) -> list[PoolItem]:
    """Inverse of ``items_to_table``."""
    fields = ("id", "source", "path", "caption", "member")
    return [PoolItem(image_bytes=r["image"], **{f: r.get(f) for f in fields}) for r in table.to_pylist()]


def captions_to_table(captions: list[Caption]) -> pa.Table:
    """Captions as a table."""
    rows = [
        {"item_id": c.item_id, "kind": c.kind, "text": c.text, "attributes_json": c.attributes_json,
         "error": c.error, "attempts": c.attempts, "backend": c.backend}
        for c in captions
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=CAPTION_SCHEMA)


# ---------------------------------------------------------------- stage 1: ingest


def stage_ingest(ctx: RunContext) -> None:
    """Read the pools into item tables; unreadable entries and repeated ids become rejects."""
    pools = ctx.cfg.pools
    stage = ctx.stage("01_ingest", pools, None)
    if ctx.reuse_or_prepare(stage, "ingest"):
        return
    stats: dict[str, Any] = {}
    all_rejects: list[Reject] = []
    for kind in KINDS:
        specs = getattr(pools, kind)
        if not specs:
            raise CurateStateError(f"curate: no {kind} pool configured (pools.{kind} is empty)")
        rejects: list[Reject] = []
        seen: set[str] = set()
        items: list[PoolItem] = []
        for item in iter_pools(specs, on_reject=rejects.append):
            if item.id in seen:
                rejects.append(Reject(item.id, f"ingest: duplicate item id in the {kind} pools"))
                continue
            seen.add(item.id)
            items.append(item)
        atomic_write_table(stage.path / f"{kind}.parquet", items_to_table(items))
        stats[kind] = {"items": len(items), "rejected": len(rejects)}
        all_rejects += [Reject(r.item, f"ingest[{kind}]: {r.cause}") for r in rejects]
    write_rejects(stage.rejects_path(), all_rejects)
    ctx.stats["ingest"] = stage.finish(stats)["stats"]


# ---------------------------------------------------------------- stage 2: caption


def _part_path(stage: StageDir, kind: str, index: int) -> Path:
    return stage.path / kind / f"part-{index:05d}.parquet"


def stage_caption(ctx: RunContext) -> None:
    """Caption both pools part by part in one engine call; a finished part is never recomputed."""
    section = ctx.cfg.caption
    stage = ctx.stage("02_caption", section, "01_ingest")
    if ctx.reuse_or_prepare(stage, "caption"):
        return
    ingest_dir = ctx.run_dir / "stages" / "01_ingest"
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
    with ctx.progress() as progress:
        task = progress.add_task(f"caption [{section.backend}]", total=total)
        progress.advance(task, total - sum(len(part) for _, part in todo))
        advance = partial(progress.advance, task)
        mapped = map_parts(
            ctx.engine, caption_stage, todo, section.batch_size, factory, advance, section.spec()
        )
        for (kind, index), results in mapped:
            captions = [caption for batch in results for caption in batch]
            atomic_write_table(_part_path(stage, kind, index), captions_to_table(captions))
    stats: dict[str, Any] = {}
    all_rejects: list[Reject] = []
    for kind in KINDS:
        tables = [pq.read_table(_part_path(stage, kind, i)) for i in range(len(parts[kind]))]
        table = pa.concat_tables(tables) if tables else CAPTION_SCHEMA.empty_table()
        rows = table.to_pylist()
        ok = [r for r in rows if r["text"] is not None and r["error"] is None]
        all_rejects += [Reject(r["item_id"], f"caption[{kind}]: {r['error']}") for r in rows if r not in ok]
        atomic_write_table(stage.path / f"{kind}.parquet", pa.Table.from_pylist(ok, schema=CAPTION_SCHEMA))
        stats[kind] = {"captioned": len(ok), "failed": len(rows) - len(ok), "backend": section.backend}
    write_rejects(stage.rejects_path(), all_rejects)
    ctx.stats["caption"] = stage.finish(stats)["stats"]


# ---------------------------------------------------------------- driver


def _check_run_dir(cfg: CurateConfig) -> None:
    stages = cfg.run_dir / "stages"
    if stages.exists() and any(stages.iterdir()) and not cfg.resume:
        raise CurateStateError(
            f"{cfg.run_dir} already holds a curate run; pass --resume to continue it, or choose a new run_dir"
        )


def run_curate(cfg: CurateConfig, engine: Engine | None = None) -> dict[str, Any]:
    """Run (or resume) every stage and return the per-stage stats."""
    from megastyle.curate.pipeline_gallery import stage_balance, stage_combine, stage_dedup
    from megastyle.curate.pipeline_output import stage_filter, stage_generate, stage_write

    _check_run_dir(cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "config.toml").write_text(cfg.to_toml())
    ctx = RunContext(cfg, cfg.run_dir, engine or make_engine(cfg.engine, cfg.workers, cfg.ray))
    timings: dict[str, float] = {}
    try:
        for name, fn in (
            ("ingest", stage_ingest), ("caption", stage_caption), ("dedup", stage_dedup),
            ("balance", stage_balance), ("combine", stage_combine), ("generate", stage_generate),
            ("filter", stage_filter), ("write", stage_write),
        ):  # fmt: skip
            start = time.perf_counter()
            if name in ("caption", "generate") or not cfg.progress:  # these draw their own bars
                fn(ctx)
            else:
                with console.status(f"curate: {name} ({ctx.engine.name} engine)"):
                    fn(ctx)
            timings[name] = time.perf_counter() - start
    finally:
        if engine is None:  # an engine passed in belongs to the caller
            ctx.engine.close()
    rejects = [
        r for path in sorted((cfg.run_dir / "stages").glob("*/rejects.jsonl")) for r in read_rejects(path)
    ]
    write_rejects(cfg.run_dir / "rejects.jsonl", rejects)
    summary = {
        "stages": ctx.stats,
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "rejects": len(rejects),
    }
    (cfg.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print_summary(ctx, timings, len(rejects))
    return summary


def print_summary(ctx: RunContext, timings: dict[str, float], rejects: int) -> None:
    """The end-of-run table: one row per stage with its main numbers and time."""
    table = Table(title=f"curate: {ctx.run_dir}")
    table.add_column("stage")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    for name, seconds in timings.items():
        stats = ctx.stats.get(name, {})
        text = json.dumps(stats, default=str)
        table.add_row(name, text if len(text) < 160 else text[:157] + "...", f"{seconds:.1f}")
    table.add_row("rejects", f"{rejects} items in {ctx.run_dir / 'rejects.jsonl'}", "")
    console.print(table)


def clear_dir(path: Path) -> None:
    """Remove a folder's contents (stale outputs of an unfinished stage)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


__all__ = ["CurateStateError", "LocalEngine", "RunContext", "caption_stage", "run_curate"]
