"""The transfer commands as library functions: ``transfer`` (style images × content prompts → images, a
side-by-side sheet and a manifest) and ``train-transfer`` (a MegaStyle-FLUX LoRA).

Each command is a typed config and a ``run_*`` function; ``megastyle.cli`` only registers them, and the
quickstart, the style-transfer benchmark and the app call the same functions. Heavy modules are
imported inside the run functions, so registering stays fast.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field
from rich.console import Console

from megastyle.config import CommandConfig, ConfigError
from megastyle.data.folders import claim_output_dir
from megastyle.devices import resolve_device
from megastyle.progress import track
from megastyle.transfer.loading import DType, check_size, load_pipeline, resolve_dtype
from megastyle.transfer.train_config import TrainTransferConfig

console = Console()

Schedule = Literal["official", "diffusers"]
ResizeMode = Literal["crop", "default", "fill"]


class GenerationSettings(CommandConfig):
    """Settings shared by ``transfer`` and ``bench transfer``: how the pipeline is loaded and run."""

    model: Path | None = Field(None, description="Local FLUX.1 pipeline folder (FluxPipeline layout).")
    steps: int | None = Field(None, ge=1, description="Denoising steps (default: 30 official, 28 diffusers).")
    guidance: float = Field(3.5, description="Embedded guidance (official 3.5).")
    size: int = Field(512, ge=16, le=4096, description="Square output side in pixels.")
    seed: int = Field(0, description="Image i (style-major over style × prompt) uses seed + i.")
    schedule: Schedule = Field("official", description="official (static shift 3.0) or diffusers (dynamic).")
    dtype: DType = Field("auto", description="auto = bf16 on CUDA, fp32 on CPU.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    batch_size: int = Field(4, ge=1, description="Images per pipeline call (a call may mix style images).")
    max_sequence_length: int = Field(512, ge=1, le=512, description="T5 tokens (official 512).")
    reference_resize_mode: ResizeMode = Field(
        "crop", description="crop (centre-crop to the target aspect), default (stretch, official), fill."
    )
    progress: bool = Field(
        True, description="Show progress: bars on a terminal, a line every few seconds in logs."
    )


class TransferConfig(GenerationSettings):
    """Transfer the style of reference images onto content prompts with MegaStyle-FLUX."""

    toml_section: ClassVar[str] = "transfer"

    style: list[Path] = Field(default_factory=list, description="Style images or folders of images.")
    prompt: list[str] = Field(default_factory=list, description="Content prompts.")
    lora: Path | None = Field(None, description="MegaStyle LoRA (official kohya or ours); none = untrained.")
    lora_scale: float = Field(1.0, description="LoRA strength.")
    output_dir: Path = Field(
        Path("runs/transfer"), description="Folder for images, sheet.png, manifest.json."
    )


def prompt_slug(prompt: str, limit: int = 48) -> str:
    """File-name-safe lowercase slug of a prompt."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")
    return slug[:limit].rstrip("-") or "prompt"


def style_files(paths: list[Path]) -> list[Path]:
    """The style images named by ``paths``: files as given, folders searched recursively."""
    from megastyle.data import list_image_files

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = list_image_files(path)
            if not found:
                raise ConfigError(f"{path}: style folder holds no images")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"{path}: style image does not exist")
    return files


def denoising_steps(cfg: GenerationSettings) -> int:
    """The steps a run takes: ``cfg.steps``, else the schedule's default (official 30, diffusers 28)."""
    from megastyle.transfer.schedule import DIFFUSERS_NUM_STEPS, OFFICIAL_NUM_STEPS

    return cfg.steps or (OFFICIAL_NUM_STEPS if cfg.schedule == "official" else DIFFUSERS_NUM_STEPS)


def pipeline_generator(pipe: Any, cfg: GenerationSettings, use_reference: bool = True) -> Any:
    """``pipe`` with ``cfg``'s settings as a generator of ``transfer.generate``."""
    from megastyle.transfer.generate import PipelineGenerator

    return PipelineGenerator(
        pipe,
        height=cfg.size,
        width=cfg.size,
        num_inference_steps=cfg.steps,
        guidance_scale=cfg.guidance,
        schedule=cfg.schedule,
        max_sequence_length=cfg.max_sequence_length,
        reference_resize_mode=cfg.reference_resize_mode,
        use_reference=use_reference,
    )


def run_transfer(cfg: TransferConfig) -> dict[str, Any]:
    """Generate every style × prompt image, write them, the sheet and the manifest; return the manifest."""
    from megastyle.data import decode_image
    from megastyle.report.transfer_sheet import save_transfer_sheet
    from megastyle.transfer.generate import StyleReference, generate

    if not cfg.style:
        raise ConfigError("set --style IMAGE (or a folder; several as a TOML list)")
    prompts = [p.strip() for p in cfg.prompt if p.strip()]
    if not prompts:
        raise ConfigError('set --prompt "a bench" (several as a TOML list)')
    references, sources, rejected = [], [], []
    for file in style_files(cfg.style):
        try:
            references.append(StyleReference(file.stem, decode_image(file.read_bytes(), item=str(file))))
            sources.append(str(file))
        except ValueError as err:
            rejected.append({"item": str(file), "cause": str(err)})
            console.print(f"[yellow]skipped style image[/yellow] {file}: {err}")
    if not references:
        first = rejected[0]
        raise ConfigError(f"{first['cause']} (no readable style image among {len(rejected)})")
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    out = claim_output_dir(cfg.output_dir, "transfer")
    pipe, lora_report = load_pipeline(
        cfg.model, cfg.lora, cfg.lora_scale, dtype, device, progress=cfg.progress
    )
    check_size(pipe, cfg.size)
    if lora_report is None:
        console.print(
            "[yellow]no --lora: the untrained FLUX with the reference in context (not MegaStyle-FLUX)[/]"
        )
    seeds = [[cfg.seed + r * len(prompts) + p for p in range(len(prompts))] for r in range(len(references))]
    start = time.perf_counter()
    generator = pipeline_generator(pipe, cfg)
    total = len(references) * len(prompts) * denoising_steps(cfg)
    with track("transfer: denoise (image-steps)", total, enabled=cfg.progress) as bar:
        generator.on_step = bar.advance
        images, rejects = generate(generator, references, prompts, seeds, batch_size=cfg.batch_size)
    seconds = time.perf_counter() - start
    entries = []
    for r in range(len(references)):
        for p, prompt in enumerate(prompts):
            index = r * len(prompts) + p
            entry = {"index": index, "style": sources[r], "prompt": prompt, "seed": seeds[r][p]}
            image = images[r][p]
            if image is not None:
                name = f"{index}_{prompt_slug(prompt)}.png"
                image.save(out / name)
                entry["file"] = name
            entries.append(entry)
    sheet = save_transfer_sheet(
        out / "sheet.png", [(ref.id, ref.image) for ref in references], prompts, images,
        title=f"MegaStyle-FLUX{' + ' + cfg.lora.name if cfg.lora else ' (no LoRA: untrained)'}",
    )  # fmt: skip
    rejected += [{"item": j.item, "cause": j.cause} for j in rejects]
    manifest = {
        "settings": cfg.model_dump(mode="json"),
        "untrained": lora_report is None,
        "lora": lora_report,
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "images": entries,
        "sheet": sheet.name,
        "rejected": rejected,
        "generation_seconds": round(seconds, 3),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    written = sum("file" in e for e in entries)
    console.print(f"{written} images, {sheet} and manifest.json in {out} ({seconds:.1f} s)")
    for item in rejected[:10]:
        console.print(f"[red]failed[/red] {item['item']}: {item['cause']}")
    return manifest


# ----- megastyle train-transfer -------------------------------------------------------------------
def run_train_transfer(cfg: TrainTransferConfig) -> None:
    """Train (or resume), then print where the LoRA files went."""
    from megastyle.data.collections import CollectionOptions, detect_form
    from megastyle.transfer.train import train_transfer

    if cfg.model is not None and not (cfg.model / "model_index.json").is_file():
        raise ConfigError(f"{cfg.model}: not a FLUX pipeline folder (no model_index.json)")
    for source in cfg.source:  # a missing source, or one of no known form, fails before the model loads
        detect_form(source, CollectionOptions.of(cfg))
    alpha = cfg.alpha
    console.print(
        f"train-transfer: LoRA rank {cfg.rank} (alpha {alpha:g}) on {len(cfg.target_modules)} module patterns, "
        f"{cfg.height}x{cfg.width}, batch {cfg.batch_size}/process, σ sampling {cfg.timestep_sampling}, "
        f"cache {'on' if cfg.cache else 'off'}"
    )
    result = train_transfer(cfg)
    console.print(f"{result.steps} steps, final loss {result.final_loss}")
    for fmt, path in result.lora_files.items():
        console.print(f"  {fmt} LoRA: {path}")
