"""The curation commands as library functions: ``curate`` (the whole pipeline) and ``render`` (style ×
content prompt files straight into MegaStyle-layout shards).

Each command is a typed config and a ``run_*`` function; ``megastyle.cli`` only registers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from rich.console import Console

from megastyle.config import CommandConfig, ConfigError
from megastyle.curate.config import CurateConfig
from megastyle.data.folders import claim_output_dir

console = Console()


def run_curate_command(cfg: CurateConfig) -> dict[str, Any]:
    """Run (or resume) the pipeline; a run folder it must not touch is a ConfigError."""
    from megastyle.curate.pipeline import CurateStateError, run_curate

    try:
        return run_curate(cfg)
    except CurateStateError as err:
        raise ConfigError(str(err)) from err


# ----- megastyle render ---------------------------------------------------------------------------
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


def _read_lines(path: Path, what: str) -> list[str]:
    """The non-empty lines of a prompt file."""
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file ({what}s, one per line, were expected)") from err
    lines = [line for line in (line.strip() for line in text.splitlines()) if line]
    if not lines:
        raise ConfigError(f"{path}: {what} file holds no prompts")
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
    claim_output_dir(cfg.output_dir, "render", legacy=lambda f: (f / "generate_manifest.json").is_file())
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
