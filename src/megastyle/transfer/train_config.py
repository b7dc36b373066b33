"""``megastyle train-transfer`` configuration: pairs, LoRA, flow-matching loss, optimisation, caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from megastyle.config import CommandConfig
from megastyle.data.collections import (
    CollectionOptions,
    SourceForm,
    content_column_field,
    form_field,
    image_column_field,
    style_column_field,
)

# The official MegaStyle-FLUX LoRA targets (diffusers names): attention q/k/v/out of both streams, the MLPs
# and the AdaLN modulation linears of double and single blocks. Suffixes: peft matches ``name == t`` or
# ``name.endswith("." + t)``, so "to_q" covers the double and single blocks' to_q.
OFFICIAL_TARGET_MODULES: tuple[str, ...] = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "add_q_proj",
    "add_k_proj",
    "add_v_proj",
    "to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
    "proj_mlp",
    "single_transformer_blocks.*.proj_out",
    "norm1.linear",
    "norm1_context.linear",
    "norm.linear",
)


class TrainTransferConfig(CommandConfig):
    """Train a MegaStyle-FLUX LoRA on paired rows of MegaStyle shards (official recipe by default)."""

    toml_section: ClassVar[str] = "train_transfer"

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
    output_dir: Path = Field(Path("runs/train_transfer"), description="Checkpoints, logs and the LoRA files.")
    model: Path | None = Field(None, description="Local FLUX.1 pipeline folder (FluxPipeline layout).")
    height: int = Field(512, ge=16, description="Training height in pixels (official: 512).")
    width: int = Field(512, ge=16, description="Training width in pixels (official: 512).")
    max_sequence_length: int = Field(512, ge=1, le=512, description="T5 tokens (official: 512).")
    flip_p: float = Field(
        0.5, ge=0, le=1, description="Reference horizontal-flip probability (official 0.5)."
    )
    crop_p: float = Field(
        0.5, ge=0, le=1, description="Reference random-resized-crop probability (official 0.5)."
    )
    crop_scale_min: float = Field(0.8, gt=0, le=1, description="Smallest crop area share (official 0.8).")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (uncached path).")

    # latent / text-embedding cache
    cache: bool = Field(
        False, description="Precompute VAE latents and text embeddings once, train from disk."
    )
    cache_dir: Path | None = Field(None, description="Cache folder (default: output_dir/cache).")
    reference_variants: int = Field(
        4, ge=1, description="Cached augmentations per reference row (drawn once; one is picked per step)."
    )
    encode_batch_size: int = Field(8, ge=1, description="Rows per encoder call while caching.")

    # LoRA
    rank: int = Field(128, ge=1, description="LoRA rank (official 128).")
    lora_alpha: float | None = Field(None, gt=0, description="LoRA alpha (default: = rank, as the official).")
    target_modules: list[str] = Field(
        default_factory=lambda: list(OFFICIAL_TARGET_MODULES),
        description="peft target modules (names, suffixes, or '*'-patterns, see the module list).",
    )
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout.")
    init_lora_weights: Literal["default", "gaussian"] = Field(
        "default", description="peft init: 'default' (Kaiming A, zero B) or 'gaussian'."
    )

    # loss
    timestep_sampling: Literal["uniform", "logit_normal", "shift", "dynamic_shift"] = Field(
        "shift",
        description="σ ~ U(0,1); sigmoid(N(mean, std)); U(0,1) through the static shift (official schedule's); "
        "or through FLUX's resolution-dependent shift (the model's scheduler config).",
    )
    logit_mean: float = Field(0.0, description="Mean of the logit-normal σ sampling.")
    logit_std: float = Field(1.0, gt=0, description="Std of the logit-normal σ sampling.")
    timestep_shift: float = Field(3.0, gt=0, description="Static shift of 'shift' sampling (official 3.0).")
    guidance: float = Field(1.0, ge=0, description="Embedded guidance while training (official 1).")

    # optimisation
    batch_size: int = Field(1, ge=1, description="Pairs per process per step.")
    epochs: int = Field(1, ge=1, description="Passes over the rows (each row is a target once per epoch).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (overrides epochs).")
    lr: float = Field(1e-4, gt=0, description="Learning rate (official 1e-4).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (torch's default).")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="After warmup: flat or cosine to 0."
    )
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip the gradient norm (None: no clip).")
    mixed_precision: Literal["auto", "bf16", "no"] = Field(
        "auto", description="bf16 autocast; 'auto' = bf16 on GPU, off on CPU."
    )
    base_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Dtype of the frozen FLUX weights ('auto': bf16 on GPU, fp32 on CPU); LoRA is fp32.",
    )
    gradient_checkpointing: bool = Field(True, description="Recompute block activations in backward.")
    cudnn_attention: bool = Field(
        False,
        description="Let SDPA use cuDNN attention while training (off: its backward hit an illegal memory "
        "access on an H200 with torch 2.11 + cuDNN 9.19; see benchmarks/results/flux_transfer_h200.txt).",
    )
    cpu: bool = Field(False, description="Train on the CPU even when a GPU is present.")

    # bookkeeping
    seed: int = Field(0, description="Seed of pairing, augmentation, σ, noise and LoRA init.")
    save_every: int = Field(0, ge=0, description="Checkpoint every N steps (0: only at the end).")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk.")
    resume: bool = Field(True, description="Continue from the newest checkpoint in output_dir.")
    save_formats: list[Literal["diffusers", "kohya"]] = Field(
        default_factory=lambda: ["diffusers", "kohya"], description="LoRA files written at the end."
    )
    log_every: int = Field(1, ge=1, description="Write a log line every N steps.")
    progress: bool = Field(True, description="Show a progress bar.")

    @model_validator(mode="after")
    def _check(self) -> TrainTransferConfig:
        if self.height % 16 or self.width % 16:
            # FLUX: VAE factor 8 × 2×2 packing; the tiny test VAE (factor 2) is fine with these too.
            raise ValueError(f"height and width must be multiples of 16, got {self.height}x{self.width}")
        if not self.target_modules:
            raise ValueError("target_modules is empty")
        return self

    @property
    def alpha(self) -> float:
        """The LoRA alpha in effect (official: alpha = rank)."""
        return float(self.lora_alpha if self.lora_alpha is not None else self.rank)

    def resume_key(self) -> dict[str, Any]:
        """Settings a checkpoint must share with this config to be resumed exactly."""
        keys = (
            "model",
            "height",
            "width",
            "max_sequence_length",
            "flip_p",
            "crop_p",
            "crop_scale_min",
            "cache",
            "reference_variants",
            "rank",
            "lora_alpha",
            "target_modules",
            "init_lora_weights",
            "timestep_sampling",
            "logit_mean",
            "logit_std",
            "timestep_shift",
            "batch_size",
            "seed",
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
        return key
