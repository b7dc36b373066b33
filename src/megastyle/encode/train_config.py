"""``megastyle train-encoder`` configuration: data, held-out styles, tower, SSCL loss, optimisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from megastyle.config import CommandConfig
from megastyle.data.collections import (
    CollectionOptions,
    SourceForm,
    content_column_field,
    form_field,
    image_column_field,
    style_column_field,
)

# The offline default tower: SigLIP architecture, width 384 = the MiniLM text width (no bridge needed).
TINY_TEXT_WIDTH = 384


class TinyTowerConfig(BaseModel):
    """A small SigLIP vision tower trained from scratch (the offline default).

    64 px in patches of 16 (16 tokens), 4 layers of width 384: a quickstart run (36 training styles
    × 8 images, 8 epochs) takes well under a minute on 2 idle cores. Measured on that data (12
    held-out styles, leave-one-out mAP): patch 16 goes 0.84 → 0.97 with training; patch 8 starts
    at 0.96 untrained, gains little in the same budget and costs ~3× more.
    """

    model_config = ConfigDict(extra="forbid")

    image_size: int = Field(64, ge=8, description="Input side in pixels.")
    patch_size: int = Field(16, ge=1, description="Patch side (64 / 16 → 16 tokens).")
    hidden_size: int = Field(TINY_TEXT_WIDTH, ge=8, description="Width; 384 = MiniLM's, so no text bridge.")
    intermediate_size: int = Field(768, ge=8, description="MLP width.")
    num_hidden_layers: int = Field(4, ge=1, description="Transformer layers.")
    num_attention_heads: int = Field(6, ge=1, description="Attention heads (hidden / heads = 64).")
    attention_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the attention weights.")
    # Preprocessing, not architecture (kept out of vision_config): see encode.images.
    crop_grid: int = Field(
        0,
        ge=0,
        description="0: resize the whole image to image_size². n ≥ 1: embed n×n image_size² crops at the "
        "image's own resolution and average them; training then uses random native-resolution crops.",
    )
    crop_source_size: int | None = Field(
        None, ge=1, description="With crop_grid: short side the image is scaled to first (None: native)."
    )

    @model_validator(mode="after")
    def _check(self) -> TinyTowerConfig:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        if self.image_size % self.patch_size:
            raise ValueError("image_size must be divisible by patch_size")
        return self

    def vision_config(self) -> dict[str, Any]:
        """The ``SiglipVisionConfig`` fields."""
        return self.model_dump(exclude={"crop_grid", "crop_source_size"})


class TrainEncoderConfig(CommandConfig):
    """Train the MegaStyle style encoder with SSCL (SupCon + SigLIP image–text loss)."""

    toml_section: ClassVar[str] = "train_encoder"

    aliases: ClassVar[dict[str, str]] = {"data_dirs": "source"}

    # data
    source: list[Path] = Field(
        default_factory=lambda: [Path("runs/quickstart/curate/dataset")],
        description="Style-labelled images: folders (or files) of MegaStyle shards, folders with a subfolder "
        "per style, CSV/JSONL manifests or labelled Parquet (imported once under output_dir/imported); "
        "styles are merged by label text.",
    )
    source_form: SourceForm = form_field()
    image_column: str | None = image_column_field()
    style_column: str | None = style_column_field()
    content_column: str | None = content_column_field()
    output_dir: Path = Field(
        Path("runs/train_encoder"), description="Checkpoints, logs and the final encoder."
    )
    holdout_styles_file: Path | None = Field(
        None,
        description="Styles never trained on (the benchmark's): JSON list/object or lines of style ids or texts.",
    )
    holdout_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="Also hold out this seeded share of the remaining styles."
    )
    augment: bool = Field(True, description="Random resized crop + flip (no colour jitter: colour is style).")
    crop_scale_min: float = Field(0.8, gt=0.0, le=1.0, description="Smallest crop area share.")
    native_zoom: tuple[float, float] = Field(
        (0.8, 1.25),
        description="Multi-crop encoders (crop_grid ≥ 1): side range of the random native crop, as a "
        "factor of the input side (log-uniform; the crop is then resized to the input).",
    )
    cache_images: Literal["auto", "on", "off"] = Field(
        "auto", description="Keep decoded images in memory ('auto': when ≤ cache_images_max_rows rows)."
    )
    cache_images_max_rows: int = Field(20_000, ge=0, description="Row limit of cache_images = 'auto'.")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")

    # model
    init: str = Field(
        "tiny",
        description="'tiny' (random small SigLIP tower) or a local folder: ours, or HF SigLIP/CLIP.",
    )
    tiny: TinyTowerConfig = Field(default_factory=TinyTowerConfig, description="The 'tiny' tower.")
    text_tower: Literal["auto", "hf", "sentence"] = Field(
        "auto", description="'hf': the init folder's text model; 'sentence': MiniLM; 'auto': hf if available."
    )
    text_model_path: Path | None = Field(None, description="Text model folder (default: init or MiniLM).")
    text_target: Literal["style", "caption"] = Field(
        "style",
        description="What the SigLIP loss matches each image with: 'style' = its style prompt (SSCL); 'caption' "
        "= its own full prompt, content and style (CLIP-style training: a comparator that learns content; "
        "needs supcon_weight = 0).",
    )

    # batches
    styles_per_batch: int = Field(12, ge=2, description="P: distinct styles per global batch.")
    images_per_style: int = Field(4, ge=2, description="K: images of each style per batch.")
    small_styles: Literal["replace", "skip"] = Field(
        "replace", description="Styles with < K images: sample with replacement, or skip them."
    )
    neighbour_share: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of each batch's other P − 1 styles taken from its first style's nearest styles "
        "by style-prompt embedding (hard-negative batches; 0: all drawn at random).",
    )
    chunk_size: int = Field(
        0, ge=0, description="Gradient-caching chunk per process (0: plain step on the whole local batch)."
    )

    # optimisation
    epochs: int = Field(8, ge=1, description="Passes over the training styles.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (overrides epochs).")
    lr: float = Field(5e-4, gt=0, description="Peak learning rate (paper: 5e-4).")
    weight_decay: float = Field(0.05, ge=0, description="AdamW decay of matrices (not norms/biases/scale).")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps with linear warmup.")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Cosine floor as a share of lr.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip the gradient norm (None: no clip).")
    mixed_precision: Literal["auto", "bf16", "no"] = Field(
        "auto", description="bf16 autocast; 'auto' = bf16 on GPU, off on CPU."
    )
    cpu: bool = Field(False, description="Train on the CPU even when a GPU is present.")
    compile: bool = Field(
        False,
        description="torch.compile each transformer layer of the tower (GPU speed; compiling takes a while).",
    )

    # loss
    supcon_weight: float = Field(1.0, ge=0, description="Weight of the SupCon loss.")
    siglip_weight: float = Field(
        0.1,
        ge=0,
        description="Weight of the SigLIP image–text loss (paper: a plain sum, weights unpublished; "
        "0.1 retrieved best with the offline MiniLM text side).",
    )
    temperature: float = Field(0.07, gt=0, description="SupCon temperature.")
    base_temperature: float = Field(0.07, gt=0, description="SupCon base temperature.")

    # bookkeeping
    seed: int = Field(0, description="Seed of init, split, sampling and augmentation.")
    save_every: int = Field(0, ge=0, description="Checkpoint every N steps (0: only at the end).")
    eval_every: int = Field(
        0, ge=0, description="Evaluate on held-out styles every N steps (0: start and end)."
    )
    eval_max_images: int = Field(4096, ge=2, description="Held-out images used by the evaluation.")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    resume: bool = Field(True, description="Continue from the newest checkpoint in output_dir.")
    log_every: int = Field(1, ge=1, description="Write a log line every N steps.")
    progress: bool = Field(True, description="Show a progress bar.")

    @model_validator(mode="after")
    def _check(self) -> TrainEncoderConfig:
        if not 0 < self.native_zoom[0] <= self.native_zoom[1]:
            raise ValueError(f"native_zoom must be 0 < low ≤ high, got {self.native_zoom}")
        if self.supcon_weight + self.siglip_weight == 0:
            raise ValueError("supcon_weight and siglip_weight cannot both be 0")
        if self.text_target == "caption" and (self.supcon_weight != 0 or self.siglip_weight == 0):
            raise ValueError(
                "text_target = 'caption' trains on captions alone: set supcon_weight = 0 and siglip_weight > 0"
            )
        return self

    @property
    def batch_size(self) -> int:
        """Effective (global) batch: P × K."""
        return self.styles_per_batch * self.images_per_style

    def resume_key(self) -> dict[str, Any]:
        """Settings a checkpoint must share with this config to be resumed exactly."""
        keys = (
            "holdout_styles_file",
            "holdout_fraction",
            "init",
            "tiny",
            "styles_per_batch",
            "images_per_style",
            "small_styles",
            "seed",
            "augment",
            "crop_scale_min",
            "native_zoom",
            "text_target",
        )
        dumped = self.model_dump(mode="json")
        # The sources keep their old key name, so checkpoints written before the rename still resume.
        key = {"data_dirs": dumped["source"], **{name: dumped[name] for name in keys}}
        options = CollectionOptions.of(self)
        if not options.is_default():  # absent by default, so older checkpoints still resume
            key["collection"] = [
                options.form,
                options.image_column,
                options.style_column,
                options.content_column,
            ]
        if self.neighbour_share:  # absent at 0, so checkpoints from before the option still resume
            key["neighbour_share"] = self.neighbour_share
        return key
