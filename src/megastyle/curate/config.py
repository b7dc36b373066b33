"""``megastyle curate`` configuration: one typed section per stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from megastyle.config import CommandConfig
from megastyle.curate.balance import PromptBalanceConfig
from megastyle.curate.dedup import DedupConfig
from megastyle.curate.executor import WorkerSpec
from megastyle.curate.executor.ray import RaySettings
from megastyle.curate.filter import FilterConfig
from megastyle.curate.pools import PoolSpec


class WorkersSection(CommandConfig):
    """How many workers run a model stage and what each reserves (Ray actors; local processes)."""

    workers: int | None = Field(
        None, ge=1, description="Workers (default: run.workers); one per GPU for GPU models."
    )
    num_cpus: float = Field(1.0, ge=0, description="CPUs per worker (Ray).")
    num_gpus: float = Field(
        0.0, ge=0, description="GPUs per worker (Ray; e.g. 1 to give each model its own GPU)."
    )

    def spec(self) -> WorkerSpec:
        """The engine-facing worker request."""
        return WorkerSpec(self.workers, self.num_cpus, self.num_gpus)


class PoolsSection(CommandConfig):
    """The two image pools: one gives style prompts, the other content prompts.

    Each pool is a list of sources; a plain path (``--pools.style ./imgs``, or a list of paths) is
    read as ``{path = ...}`` with the role of its pool.
    """

    style: list[PoolSpec] = Field(
        default_factory=list,
        description="Style pool(s): folders, shards, tars, lists; a path, a list of paths, or tables "
        "[[curate.pools.style]] with path and options.",
    )
    content: list[PoolSpec] = Field(
        default_factory=list, description="Content pool(s), in the same forms (role content)."
    )

    @model_validator(mode="before")
    @classmethod
    def _paths_as_sources(cls, data: Any) -> Any:
        """Accept a path or a list of paths for a pool, as a user would type them."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for role in ("style", "content"):
            value = out.get(role)
            if isinstance(value, str | Path):
                value = [value]
            if isinstance(value, list):
                out[role] = [{"path": v, "role": role} if isinstance(v, str | Path) else v for v in value]
        return out


class CaptionSection(WorkersSection):
    """Which captioner writes the prompts, and how."""

    backend: str = Field(
        "heuristic", description="heuristic (offline) | transformers (local Qwen-VL) | openai."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Backend constructor options.")
    batch_size: int = Field(16, ge=1, description="Pool items per captioner call.")
    part_size: int = Field(256, ge=1, description="Items per resumable part file.")


class EmbeddingSection(WorkersSection):
    """Text embedder for semantic dedup and balancing."""

    model_path: Path | None = Field(
        None, description="sentence-transformers folder; default: packaged MiniLM."
    )
    batch_size: int = Field(128, ge=1, description="Texts per embedding batch.")
    chunk_size: int = Field(4096, ge=1, description="Texts per worker call (the unit the engine maps).")
    device: str | None = Field(None, description="torch device; default: cuda when available, else cpu.")
    workers: int | None = Field(1, ge=1, description="Embedding workers (one loaded model each).")


class CombineSection(CommandConfig):
    """Style × content pairing."""

    contents_per_style: int = Field(8, ge=1, description="N content prompts per style prompt (paper: 8).")


class GenerateSection(WorkersSection):
    """Text-to-image rendering of every pair."""

    backend: str = Field(
        "procedural", description="procedural (offline) | diffusers (any local T2I pipeline)."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Backend options, e.g. model_path.")
    image_size: int = Field(256, ge=16, le=4096, description="Square image side (paper: 512).")
    batch_size: int = Field(8, ge=1, description="Requests per backend call.")
    staging_shard_rows: int = Field(400, ge=1, description="Rows per staging shard: the unit of resume.")


class FilterSection(FilterConfig):
    """Optional consistency filter over rendered style groups."""

    enabled: bool = Field(False, description="Drop style groups whose images disagree.")
    embedder: Literal["color_texture_stats"] = Field(
        "color_texture_stats", description="Image embedding used until a trained style encoder is given."
    )


class WriteSection(CommandConfig):
    """Final shards, card and contact sheet."""

    shard_size: int = Field(80_000, ge=1, description="Rows per shard (release: 80,000).")
    row_group_size: int = Field(100, ge=1, description="Rows per row group (release: 100).")
    sheet_styles: int = Field(48, ge=1, description="Style rows in the contact sheet.")
    sheet_columns: int = Field(8, ge=1, description="Images per contact-sheet row.")


class CurateConfig(CommandConfig):
    """``megastyle curate``: image pools → balanced prompt gallery → generated style dataset."""

    toml_section: ClassVar[str] = "curate"

    run_dir: Path = Field(Path("runs/curate"), description="Folder for the stages' state and the dataset.")
    resume: bool = Field(False, description="Continue a run in run_dir (required when it already has state).")
    seed: int = Field(0, description="Seed of every random choice in the run.")
    engine: Literal["local", "ray"] = Field("local", description="Execution engine: local processes or Ray.")
    workers: int = Field(2, ge=1, description="Default workers per model stage (processes or Ray actors).")
    progress: bool = Field(True, description="Show progress bars.")
    pools: PoolsSection = Field(default_factory=PoolsSection)
    caption: CaptionSection = Field(default_factory=CaptionSection)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    embedding: EmbeddingSection = Field(default_factory=EmbeddingSection)
    balance: PromptBalanceConfig = Field(default_factory=PromptBalanceConfig)
    combine: CombineSection = Field(default_factory=CombineSection)
    generate: GenerateSection = Field(default_factory=GenerateSection)
    filter: FilterSection = Field(default_factory=FilterSection)
    write: WriteSection = Field(default_factory=WriteSection)
    ray: RaySettings = Field(default_factory=RaySettings)
