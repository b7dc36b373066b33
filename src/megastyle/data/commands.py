"""The data layer's commands as library functions: ``inspect`` summarises a folder of shards, ``import``
writes a user's labelled images (folder per style, manifest, Parquet) as MegaStyle shards."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from rich.console import Console
from rich.table import Table

from megastyle.config import CommandConfig, ConfigError
from megastyle.data.collections import (
    SourceForm,
    content_column_field,
    form_field,
    image_column_field,
    style_column_field,
)
from megastyle.data.shards import DEFAULT_ROWS_PER_SHARD

console = Console()


class InspectConfig(CommandConfig):
    """Summarise a folder of shards (ours or the official release's)."""

    toml_section: ClassVar[str] = "inspect"
    aliases: ClassVar[dict[str, str]] = {"path": "source"}

    source: Path = Field(
        Path("runs/quickstart/curate/dataset"),
        description="Folder of Parquet shards (default: the quickstart's).",
    )
    verify_images: bool = Field(False, description="Decode every image and report the bad ones.")
    progress: bool = Field(True, description="Show progress while verifying images.")


def _not_shards(path: Path) -> ConfigError:
    """The error for a source without shards: what it is instead, when it is a collection of another form."""
    from megastyle.data.collections import CollectionError, open_collection

    try:
        collection = open_collection(path)
    except CollectionError as err:
        return ConfigError(str(err))
    return ConfigError(
        f"{path}: no *.parquet shards, but {collection.kind()} with {len(collection.styles())} styles and "
        f"{len(collection)} images: every command reads it as --source, or convert it once with "
        f"megastyle import --source {path} --output-dir DIR"
    )


def run_inspect(cfg: InspectConfig) -> dict[str, Any]:
    """Print shard, row, style and backend counts; optionally decode every image. Returns the counts."""
    from megastyle.data import ShardFormatError, ShardReader, decode_image
    from megastyle.data.collections import is_shard_file
    from megastyle.data.shards import list_shards
    from megastyle.progress import track

    path = cfg.source
    if not path.exists():
        raise ConfigError(f"{path}: does not exist")
    if (path.is_dir() and not list_shards(path)) or (path.is_file() and not is_shard_file(path)):
        raise _not_shards(path)
    try:
        reader = ShardReader(path)
    except ShardFormatError as err:
        raise ConfigError(str(err)) from err
    styles: Counter[str] = Counter()
    backends: Counter[str] = Counter()
    bad: list[tuple[str, str]] = []
    with track("inspect: decoding images", len(reader), enabled=cfg.verify_images and cfg.progress) as bar:
        for record in reader:
            styles[record.style] += 1
            backends[record.backend or "unknown"] += 1
            if cfg.verify_images:
                try:
                    decode_image(record.image, item=record.id)
                except ValueError as err:
                    bad.append((record.id, str(err)))
                bar.advance()
    table = Table(title=str(path))
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
    return {"shards": len(reader.shards), "rows": len(reader), "styles": len(styles), "undecodable": len(bad)}


# ----- megastyle import ---------------------------------------------------------------------------------
class ImportConfig(CommandConfig):
    """Write a folder per style, an image manifest or labelled Parquet as MegaStyle shards."""

    toml_section: ClassVar[str] = "import"

    source: Path | None = Field(
        None,
        description="Image folder with one subfolder per style, a folder or file with a CSV/JSONL manifest "
        "(path, style[, content]), or Parquet with label columns.",
    )
    output_dir: Path | None = Field(None, description="New or empty folder for the shards.")
    source_form: SourceForm = form_field()
    image_column: str | None = image_column_field()
    style_column: str | None = style_column_field()
    content_column: str | None = content_column_field()
    rows_per_shard: int = Field(DEFAULT_ROWS_PER_SHARD, ge=1, description="Rows per shard file.")
    progress: bool = Field(True, description="Show progress.")


def run_import(cfg: ImportConfig) -> Any:
    """Import the source into ``output_dir``; print what was written and the first rejects. Returns the summary."""
    from megastyle.data.collections import (
        CollectionOptions,
        detect_form,
        import_collection,
        open_collection,
        prepare_import_folder,
        read_import_summary,
    )

    if cfg.source is None or cfg.output_dir is None:
        raise ConfigError("import needs --source FOLDER_OR_FILE and --output-dir DIR")
    options = CollectionOptions.of(cfg)
    if detect_form(cfg.source, options) == "shards":
        raise ConfigError(f"{cfg.source}: already MegaStyle shards; every command reads it as it is")
    if cfg.output_dir.resolve() == cfg.source.resolve():
        raise ConfigError(f"{cfg.output_dir}: the output folder is the source; give another --output-dir")
    collection = open_collection(cfg.source, options)
    key = collection.fingerprint()
    previous = read_import_summary(cfg.output_dir)
    if previous is not None and previous.key == key:
        console.print(f"{cfg.output_dir} already holds this import (unchanged source): {previous.line()}")
        return previous
    out = prepare_import_folder(cfg.output_dir)
    summary = import_collection(
        collection, out, rows_per_shard=cfg.rows_per_shard, progress=cfg.progress, key=key
    )
    console.print(f"imported {collection.describe()}")
    console.print(
        f"wrote {summary.images} images of {summary.styles} styles as {summary.shards} shards to {out}; "
        f"{summary.rejected} rejected (listed in {out / 'rejects.jsonl'}); "
        f"content labels: {'yes' if summary.content_labels else 'no'}"
    )
    rejects = (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    for line in rejects[:10]:
        entry = json.loads(line)
        console.print(f"[yellow]rejected[/yellow] {entry['item']}: {entry['cause']}")
    return summary
