"""Dataset commands: ``render`` a style × content grid into shards, ``inspect`` shards."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import ClassVar

import typer
from pydantic import Field
from rich.console import Console
from rich.table import Table

from megastyle.cli.common import config_command
from megastyle.config import CommandConfig, ConfigError

console = Console()


class RenderConfig(CommandConfig):
    """Render every style prompt with N content prompts into MegaStyle-layout shards."""

    toml_section: ClassVar[str] = "render"

    output_dir: Path = Field(Path("runs/render"), description="Folder for the shards.")
    style_prompts: Path | None = Field(
        None, description="Text file, one style prompt per line (else sampled)."
    )
    content_prompts: Path | None = Field(
        None, description="Text file, one content prompt per line (else sampled)."
    )
    num_styles: int = Field(16, ge=1, description="Style prompts to sample when no file is given.")
    num_content_prompts: int = Field(32, ge=1, description="Content prompts to sample when no file is given.")
    contents_per_style: int = Field(8, ge=1, description="Images per style.")
    seed: int = Field(0, description="Seed of sampling, pairing and rendering.")
    image_size: int = Field(256, ge=16, le=2048, description="Square image side in pixels.")
    backend: str = Field("procedural", description="Text-to-image backend.")
    workers: int = Field(1, ge=1, description="Render processes.")
    batch_size: int = Field(8, ge=1, description="Requests per backend call.")
    shard_size: int = Field(80_000, ge=1, description="Rows per shard.")
    row_group_size: int = Field(100, ge=1, description="Rows per Parquet row group.")


class InspectConfig(CommandConfig):
    """Summarise a folder of shards (ours or the official release's)."""

    toml_section: ClassVar[str] = "inspect"

    path: Path = Field(Path("runs/quickstart/dataset"), description="Folder of Parquet shards.")
    verify_images: bool = Field(False, description="Decode every image and report the bad ones.")


def _read_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ConfigError(f"{what} file {path} holds no prompts")
    return lines


def run_render(cfg: RenderConfig) -> None:
    """Render the configured grid and print what was written."""
    from megastyle.curate.generate import plan_images, run_generate
    from megastyle.prompts import sample_content_prompts, sample_style_prompts

    styles = (
        _read_lines(cfg.style_prompts, "style prompt")
        if cfg.style_prompts
        else sample_style_prompts(cfg.num_styles, seed=cfg.seed)
    )
    contents = (
        _read_lines(cfg.content_prompts, "content prompt")
        if cfg.content_prompts
        else sample_content_prompts(cfg.num_content_prompts, seed=cfg.seed + 1)
    )
    plan = plan_images(styles, contents, cfg.contents_per_style, seed=cfg.seed)
    summary = run_generate(
        plan,
        cfg.output_dir,
        backend=cfg.backend,
        size=cfg.image_size,
        shard_size=cfg.shard_size,
        row_group_size=cfg.row_group_size,
        batch_size=cfg.batch_size,
        workers=cfg.workers,
    )
    console.print(
        f"{summary.written} rows in {cfg.output_dir} ({summary.shards_written} shards written, "
        f"{summary.shards_skipped} reused, {summary.rejected} rejected) by '{summary.backend}'"
    )


def run_inspect(cfg: InspectConfig) -> None:
    """Print shard, row, style and backend counts; optionally decode every image."""
    from megastyle.data import ShardReader, decode_image

    reader = ShardReader(cfg.path)
    styles: Counter[str] = Counter()
    backends: Counter[str] = Counter()
    bad: list[tuple[str, str]] = []
    for record in reader:
        styles[record.style] += 1
        backends[record.backend or "unknown"] += 1
        if cfg.verify_images:
            try:
                decode_image(record.image, item=record.id)
            except ValueError as err:
                bad.append((record.id, str(err)))
    table = Table(title=str(cfg.path))
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("shards", str(len(reader.shards)))
    table.add_row("rows", str(len(reader)))
    table.add_row("styles", str(len(styles)))
    table.add_row(
        "rows per style (min/max)", f"{min(styles.values(), default=0)}/{max(styles.values(), default=0)}"
    )
    for name, count in backends.most_common():
        table.add_row(f"backend {name}", str(count))
    if cfg.verify_images:
        table.add_row("undecodable images", str(len(bad)))
    console.print(table)
    for item, cause in bad[:20]:
        console.print(f"[red]{item}[/red]: {cause}")


def register(app: typer.Typer) -> None:
    """Add the dataset commands to ``app``."""
    config_command(app, "render", RenderConfig, "Render style × content prompts into MegaStyle shards.")(
        run_render
    )
    config_command(app, "inspect", InspectConfig, "Summarise a folder of MegaStyle-layout shards.")(
        run_inspect
    )
