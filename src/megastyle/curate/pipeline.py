"""``megastyle curate``: pools → captions → dedup → balance → combine → generate → filter → write.

The pipeline is the list ``STAGES``; stage ``i`` (counting from 1) keeps its files under
``run_dir/stages/{i:02d}_{name}`` with a manifest written last (see ``runstate``). A stage's key
hashes its config section and the key of the stage before it, so ``--resume`` redoes exactly the
stages whose inputs or settings changed and a finished run does nothing. Per-item stages
(caption, generate) also resume inside the stage, part by part. Stage work is plain functions
over batches, mapped by an engine (``executor``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from megastyle.curate.config import CurateConfig
from megastyle.curate.executor import Engine, make_engine
from megastyle.curate.runstate import StageDir, fingerprint, read_rejects, write_rejects
from megastyle.curate.stages import balance, caption, combine, dedup, filter, generate, ingest, write
from megastyle.curate.stages.base import CurateStateError, RunContext, Stage, console, section_payload
from megastyle.data import atomic_write_json, atomic_write_text
from megastyle.data.folders import claim_output_dir, owner_of
from megastyle.progress import step

STAGES: tuple[Stage, ...] = (
    ingest.STAGE,
    caption.STAGE,
    dedup.STAGE,
    balance.STAGE,
    combine.STAGE,
    generate.STAGE,
    filter.STAGE,
    write.STAGE,
)
STAGE_FOLDERS = {stage.name: f"{i:02d}_{stage.name}" for i, stage in enumerate(STAGES, 1)}


def _legacy_run(run_dir: Path) -> bool:
    """A curate run written before run folders carried a marker: it has our stage folders."""
    return (run_dir / "stages" / STAGE_FOLDERS["ingest"]).is_dir()


def _has_progress(run_dir: Path) -> bool:
    """True when some stage of the run in ``run_dir`` finished (its manifest exists)."""
    return any((run_dir / "stages").glob("*/manifest.json"))


def check_run_dir(cfg: CurateConfig) -> None:
    """Refuse a run folder this invocation must not write: a file, a user's folder, a run to overwrite,
    a resume of nothing; and missing pools, before anything is written."""
    run_dir = cfg.run_dir
    if run_dir.exists() and not run_dir.is_dir():
        raise CurateStateError(f"{run_dir}: is a file, not a run folder")
    ours = owner_of(run_dir) == "curate" or (run_dir.is_dir() and _legacy_run(run_dir))
    if cfg.resume and not ours:
        raise CurateStateError(
            f"{run_dir}: holds no megastyle curate run to resume; drop --resume to start one"
        )
    if ours and _has_progress(run_dir) and not cfg.resume:
        raise CurateStateError(
            f"{run_dir}: already holds a curate run; pass --resume to continue it, or choose a new run_dir"
        )
    for role in ("style", "content"):
        if not getattr(cfg.pools, role):
            raise CurateStateError(f"pools.{role}: no {role} pool configured; give --pools.{role} FOLDER")
        for spec in getattr(cfg.pools, role):
            if not spec.path.exists():
                raise CurateStateError(f"{spec.path}: the {role} pool does not exist")


def _run_stage(ctx: RunContext, stage: Stage, upstream_key: str | None) -> StageDir:
    """Reuse ``stage`` when it finished with the same key and its outputs exist; otherwise run it."""
    folder = STAGE_FOLDERS[stage.name]
    key = fingerprint([folder, section_payload(stage.section(ctx.cfg)), upstream_key, ctx.cfg.seed])
    stage_dir = StageDir(ctx.run_dir, folder, key)
    if stage_dir.is_done() and stage.outputs_present(ctx):
        ctx.stats[stage.name] = stage_dir.stats()
        return stage_dir
    stage_dir.prepare()
    if stage.draws_progress:
        result = stage.run(ctx, stage_dir)
    else:
        with step(f"curate: {stage.name} ({ctx.engine.name} engine)", enabled=ctx.cfg.progress):
            result = stage.run(ctx, stage_dir)
    write_rejects(stage_dir.rejects_path(), result.rejects)
    ctx.stats[stage.name] = stage_dir.finish(result.stats)["stats"]
    return stage_dir


def run_curate(cfg: CurateConfig, engine: Engine | None = None) -> dict[str, Any]:
    """Run (or resume) every stage and return the per-stage stats."""
    check_run_dir(cfg)
    claim_output_dir(cfg.run_dir, "curate", legacy=_legacy_run)
    atomic_write_text(cfg.run_dir / "config.toml", cfg.to_toml())
    ctx = RunContext(cfg, cfg.run_dir, engine or make_engine(cfg.engine, cfg.workers, cfg.ray), STAGE_FOLDERS)
    timings: dict[str, float] = {}
    key = None
    try:
        for stage in STAGES:
            start = time.perf_counter()
            key = _run_stage(ctx, stage, key).key
            timings[stage.name] = time.perf_counter() - start
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
    atomic_write_json(cfg.run_dir / "summary.json", summary)
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


__all__ = ["STAGES", "CurateStateError", "RunContext", "run_curate"]
