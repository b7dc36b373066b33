"""The quickstart's settings: a small offline run of the whole loop by default, or a named preset.

``quick`` (the default) shows a newcomer every step in about two minutes on 2 cores. ``study`` is the
research scale whose results are in ``docs/results.md`` (800 styles, 26 encoder epochs, about 14
minutes). A preset only fills the fields a config file or the command line leaves unset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from megastyle.config import CommandConfig
from megastyle.curate.config import CurateConfig
from megastyle.data.folders import owner_of
from megastyle.quickstart.pools import SyntheticPools

PresetName = Literal["quick", "study"]
# Field values each preset sets (fields not named keep their defaults, which are the quick run's).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    "study": {
        "style_pool_images": 1920,
        "num_styles": 800,
        "image_size": 256,
        "holdout_fraction": 0.05,
        "encoder_epochs": 26,
        "encoder_caption_epochs": 5,
        "object_scale": 1.2,
    },
}
# What each preset takes on 2 idle cores, told at the start of a run.
PRESET_MINUTES = {"quick": 2, "study": 14}


class QuickstartConfig(CommandConfig):
    """Settings of the quickstart run (``preset`` picks a scale; any field overrides it)."""

    toml_section: ClassVar[str] = "quickstart"

    preset: PresetName = Field(
        "quick",
        description="quick: the whole loop in about 2 minutes; study: the research scale of docs/results.md "
        "(800 styles, 26 encoder epochs, about 14 minutes). Fields given explicitly override the preset.",
    )

    output_dir: Path = Field(Path("runs/quickstart"), description="Folder for every output of the run.")
    seed: int = Field(0, description="Seed of pools, captions, balancing, pairing and rendering.")
    style_pool_images: int = Field(240, ge=2, description="Images in the offline style pool.")
    content_pool_images: int = Field(
        96, ge=2, description="Images (with alt-text captions) in the content pool."
    )
    num_styles: int = Field(96, ge=1, description="Style prompts kept by balancing (paper: 170K).")
    num_content_prompts: int = Field(64, ge=1, description="Content prompts kept by balancing (paper: 400K).")
    contents_per_style: int = Field(8, ge=1, description="Images per style (N in the paper: 8).")
    image_size: int = Field(128, ge=16, le=2048, description="Square image side in pixels.")
    backend: str = Field("procedural", description="Text-to-image backend of the generate stage.")
    workers: int = Field(2, ge=1, description="Worker processes (or Ray actors) per curation stage.")
    engine: Literal["local", "ray"] = Field(
        "local", description="Curation engine: local processes, or a Ray cluster started on this machine."
    )
    shard_size: int = Field(128, ge=1, description="Rows per Parquet shard (the release uses 80,000).")
    row_group_size: int = Field(100, ge=1, description="Rows per Parquet row group (the release uses 100).")
    sheet_columns: int = Field(8, ge=1, description="Images per style row in the contact sheet.")
    palette_family_size: int = Field(
        4,
        ge=1,
        description="Style-pool prompts per shared palette and light (so colour alone cannot tell styles apart).",
    )
    shade_variation: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Per-image shift of the style's palette shades (procedural backend), as a text-to-image "
        "model never paints one palette in the same shades twice.",
    )
    content_color: float = Field(
        1.0,
        ge=0,
        le=1,
        description="How far objects take the colour their content prompt gives them ('a wooden bench' "
        "browns) away from the style's palette (procedural backend).",
    )
    object_scale: float = Field(
        1.0,
        ge=0.25,
        le=4.0,
        description="How large the procedural backend draws the content's objects (1.0: the whole scene fits "
        "the frame; larger crops into it, so content fills more of the image).",
    )
    caption_colors: str = Field(
        "basic",
        description="Colour vocabulary of the heuristic captioner: 'basic' (15 names, stable within a "
        "palette family) or 'full' (~50 names).",
    )
    train_encoder: bool = Field(True, description="Train the tiny encoder and run the retrieval benchmark.")
    holdout_fraction: float = Field(0.25, gt=0, lt=1, description="Share of styles held out for retrieval.")
    leakage_grid: bool = Field(
        True,
        description="Render every held-out style with every content prompt (the generate backend) and measure "
        "each encoder's content leakage on that grid (bench.leakage_grid).",
    )
    encoder_epochs: int = Field(10, ge=1, description="Training epochs of the tiny encoder.")
    encoder_image_size: int = Field(
        64, ge=16, description="Input side of the tiny encoder (a multiple of its 16-pixel patches)."
    )
    encoder_crop_grid: int = Field(
        0,
        ge=0,
        description="0: the tiny encoder sees each image downsampled whole. n ≥ 1: it embeds n×n crops at "
        "native resolution (averaged) and trains on random native crops (see encode.images).",
    )
    encoder_caption_comparator: bool = Field(
        True,
        description="Also train the same tower CLIP-style on full prompts (content + style): the comparator "
        "that shows what content leakage looks like.",
    )
    encoder_caption_epochs: int = Field(
        3,
        ge=1,
        description="Training epochs of the caption-trained comparator (it only has to show what leakage "
        "looks like, so its schedule is shorter).",
    )
    style_transfer: bool = Field(True, description="End with a style transfer on a tiny untrained FLUX.")
    progress: bool = Field(
        True, description="Show progress: bars on a terminal, a line every few seconds in logs."
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """Fill the fields the caller left unset from the chosen preset."""
        if not isinstance(data, dict):
            return data
        name = data.get("preset", "quick")
        return {**PRESETS.get(name, {}), **data}

    def expected_minutes(self) -> int:
        """Roughly how long the chosen preset runs on 2 idle cores (the default sizes)."""
        return PRESET_MINUTES[self.preset]

    def generate_options(self) -> dict[str, float]:
        """Options of the generate stage's backend (the procedural backend's knobs; none for others)."""
        if self.backend != "procedural":
            return {}
        return {
            "shade_variation": self.shade_variation,
            "content_color": self.content_color,
            "object_scale": self.object_scale,
        }

    def curate_config(self, pools: SyntheticPools) -> CurateConfig:
        """The ``megastyle curate`` config this quickstart runs."""
        return CurateConfig.model_validate(
            {
                "run_dir": self.output_dir / "curate",
                # A rerun of the quickstart continues its own curate run; a first run starts one.
                "resume": owner_of(self.output_dir / "curate") == "curate",
                "seed": self.seed,
                "workers": self.workers,
                "engine": self.engine,
                "progress": self.progress,
                "pools": {
                    "style": [{"path": pools.style_dir, "role": "style"}],
                    "content": [{"path": pools.content_dir, "role": "content", "require_caption": True}],
                },
                "caption": {"backend": "heuristic", "options": {"color_vocabulary": self.caption_colors}},
                "balance": {
                    "style": {"target": self.num_styles},
                    "content": {"target": self.num_content_prompts},
                },
                "combine": {"contents_per_style": self.contents_per_style},
                "generate": {
                    "backend": self.backend,
                    "image_size": self.image_size,
                    "options": self.generate_options(),
                },
                "write": {
                    "shard_size": self.shard_size,
                    "row_group_size": self.row_group_size,
                    "sheet_columns": self.sheet_columns,
                },
            }
        )
