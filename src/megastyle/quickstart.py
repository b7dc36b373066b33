"""``megastyle quickstart``: the main job end to end on the embedded offline backends."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from rich.console import Console
from rich.table import Table

from megastyle.config import CommandConfig
from megastyle.curate.generate import plan_images, run_generate
from megastyle.data import ShardReader
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.report.contact_sheet import save_contact_sheet
from megastyle.report.html import Section, write_report

console = Console(stderr=True)


class QuickstartConfig(CommandConfig):
    """Settings of the quickstart run; the defaults finish in a few minutes on 2 cores."""

    toml_section: ClassVar[str] = "quickstart"

    output_dir: Path = Field(Path("runs/quickstart"), description="Folder for every output of the run.")
    seed: int = Field(0, description="Seed of prompt sampling, pairing and rendering.")
    num_styles: int = Field(48, ge=1, description="Style prompts to sample.")
    num_content_prompts: int = Field(64, ge=1, description="Content prompts to sample.")
    contents_per_style: int = Field(8, ge=1, description="Images per style (N in the paper: 8).")
    image_size: int = Field(256, ge=16, le=2048, description="Square image side in pixels.")
    backend: str = Field("procedural", description="Text-to-image backend of the generate stage.")
    workers: int = Field(2, ge=1, description="Render processes.")
    shard_size: int = Field(128, ge=1, description="Rows per Parquet shard (the release uses 80,000).")
    row_group_size: int = Field(100, ge=1, description="Rows per Parquet row group (the release uses 100).")
    sheet_columns: int = Field(8, ge=1, description="Images per style row in the contact sheet.")
    progress: bool = Field(True, description="Show progress bars.")


def run_quickstart(cfg: QuickstartConfig) -> dict[str, object]:
    """Sample prompts, render the style dataset into shards, draw a contact sheet, write the report."""
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.toml").write_text(cfg.to_toml())
    timings: dict[str, float] = {}

    start = time.perf_counter()
    styles = sample_style_prompts(cfg.num_styles, seed=cfg.seed)
    contents = sample_content_prompts(cfg.num_content_prompts, seed=cfg.seed + 1)
    plan = plan_images(styles, contents, cfg.contents_per_style, seed=cfg.seed)
    timings["prompts"] = time.perf_counter() - start

    start = time.perf_counter()
    dataset_dir = out / "dataset"
    summary = run_generate(
        plan,
        dataset_dir,
        backend=cfg.backend,
        size=cfg.image_size,
        shard_size=cfg.shard_size,
        row_group_size=cfg.row_group_size,
        workers=cfg.workers,
        show_progress=cfg.progress,
    )
    timings["generate"] = time.perf_counter() - start

    start = time.perf_counter()
    reader = ShardReader(dataset_dir)
    rows_by_style: dict[int, list] = {}
    styles_text: dict[int, str] = {}
    for record in reader:
        bucket = rows_by_style.setdefault(record.style_id, [])
        if len(bucket) < cfg.sheet_columns:
            bucket.append(record.pil_image())
        styles_text[record.style_id] = record.style
    sheet_rows = [(f"s{sid}: {styles_text[sid]}", rows_by_style[sid]) for sid in sorted(rows_by_style)]
    sheet_path = save_contact_sheet(sheet_rows, out / "contact_sheet.png")
    timings["contact_sheet"] = time.perf_counter() - start

    results = {
        "backend": summary.backend,
        "styles": len(styles),
        "content_prompts": len(contents),
        "rows": len(reader),
        "rejected": summary.rejected,
        "shards": len(reader.shards),
        "shards_reused": summary.shards_skipped,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    dataset = Section("Style dataset").text(
        f"{len(reader)} images of {len(styles)} style prompts × {cfg.contents_per_style} content prompts, "
        f"rendered by the '{summary.backend}' backend (offline, procedural: no model weights) "
        f"at {cfg.image_size}² into {len(reader.shards)} MegaStyle-layout Parquet shards in {dataset_dir}."
    )
    dataset.table(["stage", "seconds"], [(k, round(v, 2)) for k, v in timings.items()])
    dataset.image(sheet_path, out, "One row per style prompt (first images of each style).")
    report = write_report(
        out / "report.html",
        "megastyle quickstart",
        [dataset],
        subtitle=f"seed {cfg.seed}; embedded default backends; config in config.toml",
    )
    _print_summary(results, report)
    return results


def _print_summary(results: dict[str, object], report: Path) -> None:
    table = Table(title="quickstart")
    table.add_column("item")
    table.add_column("value", justify="right")
    for key, value in results.items():
        table.add_row(key, str(value))
    console.print(table)
    console.print(f"report: {report}")
