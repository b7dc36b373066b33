"""The data layer's command as a library function: ``inspect`` summarises a folder of shards."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import ClassVar

from pydantic import Field
from rich.console import Console
from rich.table import Table

from megastyle.config import CommandConfig

console = Console()


class InspectConfig(CommandConfig):
    """Summarise a folder of shards (ours or the official release's)."""

    toml_section: ClassVar[str] = "inspect"

    path: Path = Field(
        Path("runs/quickstart/curate/dataset"),
        description="Folder of Parquet shards (default: the quickstart's).",
    )
    verify_images: bool = Field(False, description="Decode every image and report the bad ones.")


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
