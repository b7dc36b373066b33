"""Style transfer commands: ``transfer`` (images + side-by-side sheet + manifest) and ``bench transfer``."""

from __future__ import annotations

import gc
import json
import re
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from megastyle.cli.common import config_command, resolve_device
from megastyle.config import CommandConfig, ConfigError

console = Console()

DType = Literal["auto", "bf16", "fp16", "fp32"]
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


class GeneratorSpec(BaseModel):
    """One generator of the benchmark."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Row name in the table.")
    kind: Literal["megastyle", "no_reference", "copy"] = Field(
        "megastyle",
        description="megastyle: the pipeline with the reference (+ LoRA); no_reference: plain FLUX text-to-image "
        "(style floor); copy: returns the reference (leakage ceiling).",
    )
    model: Path | None = Field(None, description="FLUX folder (default: the command's `model`).")
    lora: Path | None = Field(None, description="LoRA file (none = untrained).")
    lora_scale: float = Field(1.0, description="LoRA strength.")


class TransferBenchConfig(GenerationSettings):
    """StyleBench-like evaluation: references × content prompts → style score, text score, content leakage."""

    toml_section: ClassVar[str] = "bench_transfer"

    references: Path | None = Field(None, description="Folder of reference images, or megastyle shards.")
    max_styles: int = Field(8, ge=0, description="References sampled (one per style; 0 = all).")
    prompts: list[str] = Field(
        ["A bench", "A car", "A house with a tree beside"], description="Content prompts (official three)."
    )
    extra_prompts: list[str] = Field(default_factory=list, description="More content prompts.")
    prompts_file: Path | None = Field(None, description="Text file with more prompts, one per line.")
    lora: Path | None = Field(None, description="LoRA of the default 'megastyle' generator.")
    generators: list[GeneratorSpec] = Field(
        default_factory=list, description="Generators (default: megastyle from model/lora, plus copy)."
    )
    style_encoder: Path | None = Field(None, description="Style encoder folder (ours, or HF SigLIP/CLIP).")
    clip_model: Path | None = Field(None, description="Local CLIP folder for text score and leakage.")
    output_dir: Path = Field(Path("runs/bench/transfer"), description="Folder for the table and grids.")
    save_images: bool = Field(False, description="Also write every generated image.")
    thumb: int = Field(128, ge=16, description="Grid tile side in pixels.")


# ----- shared helpers ---------------------------------------------------------------------------
def resolve_dtype(name: DType, device: str) -> Any:
    """'auto' → bf16 on CUDA, fp32 elsewhere."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def load_pipeline(
    model: Path | None, lora: Path | None, lora_scale: float, dtype: Any, device: str
) -> tuple[Any, dict[str, Any] | None]:
    """``MegaStyleFluxPipeline`` from a local folder, optionally with a LoRA → (pipeline, LoRA report or None)."""
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    if model is None or not model.is_dir():
        raise ConfigError(f"set --model to a local FLUX pipeline folder (got {model})")
    try:
        pipe = MegaStyleFluxPipeline.from_pretrained(model, dtype=dtype, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load a FLUX pipeline from {model}: {err}") from err
    report = None
    if lora is not None:
        from megastyle.transfer.lora import load_megastyle_lora

        if not lora.is_file():
            raise ConfigError(f"LoRA file {lora} does not exist")
        try:
            loaded = load_megastyle_lora(pipe, lora, scale=lora_scale)
        except (OSError, ValueError, RuntimeError) as err:
            raise ConfigError(f"cannot load LoRA {lora}: {err}") from err
        report = {"path": str(lora), "scale": lora_scale, "placed_keys": len(loaded.placed),
                  "modules": len(loaded.modules), "unplaced": dict(loaded.unplaced)}  # fmt: skip
        for key, why in list(loaded.unplaced.items())[:10]:
            console.print(f"[yellow]LoRA key not placed[/yellow] {key}: {why}")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device), report


def _check_size(pipe: Any, size: int) -> None:
    multiple = 2 * int(pipe.vae_scale_factor)
    if size % multiple:
        raise ConfigError(f"size {size} must be a multiple of {multiple} (2 × the VAE scale factor)")


def prompt_slug(prompt: str, limit: int = 48) -> str:
    """File-name-safe lowercase slug of a prompt."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")
    return slug[:limit].rstrip("-") or "prompt"


def _style_files(paths: list[Path]) -> list[Path]:
    from megastyle.bench.transfer import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ConfigError(f"style folder {path} holds no images")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"style image {path} does not exist")
    return files


def _generator(pipe: Any, cfg: GenerationSettings, use_reference: bool = True) -> Any:
    from megastyle.bench.transfer import PipelineGenerator

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


# ----- megastyle transfer -----------------------------------------------------------------------
def run_transfer(cfg: TransferConfig) -> dict[str, Any]:
    """Generate every style × prompt image, write them, the sheet and the manifest; return the manifest."""
    from megastyle.bench.transfer import StyleReference, generate
    from megastyle.data import decode_image
    from megastyle.transfer.sheet import save_transfer_sheet

    if not cfg.style:
        raise ConfigError("set --style IMAGE (or a folder; several as a TOML list)")
    prompts = [p.strip() for p in cfg.prompt if p.strip()]
    if not prompts:
        raise ConfigError('set --prompt "a bench" (several as a TOML list)')
    references, sources, rejected = [], [], []
    for file in _style_files(cfg.style):
        try:
            references.append(StyleReference(file.stem, decode_image(file.read_bytes(), item=str(file))))
            sources.append(str(file))
        except ValueError as err:
            rejected.append({"item": str(file), "cause": str(err)})
            console.print(f"[yellow]skipped style image[/yellow] {file}: {err}")
    if not references:
        raise ConfigError("no readable style image")
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    pipe, lora_report = load_pipeline(cfg.model, cfg.lora, cfg.lora_scale, dtype, device)
    _check_size(pipe, cfg.size)
    if lora_report is None:
        console.print(
            "[yellow]no --lora: the untrained FLUX with the reference in context (not MegaStyle-FLUX)[/]"
        )
    seeds = [[cfg.seed + r * len(prompts) + p for p in range(len(prompts))] for r in range(len(references))]
    start = time.perf_counter()
    images, rejects = generate(_generator(pipe, cfg), references, prompts, seeds, batch_size=cfg.batch_size)
    seconds = time.perf_counter() - start
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
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


# ----- megastyle bench transfer -----------------------------------------------------------------
def _bench_prompts(cfg: TransferBenchConfig) -> list[str]:
    prompts = [*cfg.prompts, *cfg.extra_prompts]
    if cfg.prompts_file is not None:
        if not cfg.prompts_file.is_file():
            raise ConfigError(f"prompts file {cfg.prompts_file} does not exist")
        prompts += cfg.prompts_file.read_text(encoding="utf-8").splitlines()
    prompts = list(dict.fromkeys(p.strip() for p in prompts if p.strip()))  # de-duplicated, in order
    if not prompts:
        raise ConfigError("no content prompts")
    return prompts


def _bench_specs(cfg: TransferBenchConfig) -> list[GeneratorSpec]:
    specs = cfg.generators or [
        GeneratorSpec(name="megastyle" if cfg.lora else "untrained", lora=cfg.lora),
        GeneratorSpec(name="copy_reference", kind="copy"),
    ]
    if len({s.name for s in specs}) != len(specs):
        raise ConfigError("generator names must be unique")
    return specs


def run_bench_transfer(cfg: TransferBenchConfig) -> Any:
    """Evaluate each generator on the same references/prompts/seeds; print and write the report."""
    from megastyle.bench.transfer import (
        ClipScorer,
        CopyReferenceGenerator,
        evaluate_transfer,
        load_references,
        transfer_table,
        write_transfer_report,
    )
    from megastyle.encode.model import StyleEncoder

    if cfg.references is None:
        raise ConfigError("set --references FOLDER (images, or megastyle shards)")
    if cfg.style_encoder is None or cfg.clip_model is None:
        raise ConfigError("set --style-encoder FOLDER and --clip-model FOLDER (local models)")
    prompts = _bench_prompts(cfg)
    specs = _bench_specs(cfg)
    try:
        references, ref_rejects = load_references(
            cfg.references, max_styles=cfg.max_styles or None, seed=cfg.seed
        )
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    for reject in ref_rejects[:10]:
        console.print(f"[yellow]skipped reference[/yellow] {reject.item}: {reject.cause}")
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    try:
        encoder = StyleEncoder.from_pretrained(cfg.style_encoder, device=device)
        clip = ClipScorer(cfg.clip_model, device=device)
    except (FileNotFoundError, OSError, ValueError) as err:
        raise ConfigError(str(err)) from err
    result, lora_reports = None, {}
    for spec in specs:  # one pipeline in memory at a time
        lora_report = None
        if spec.kind == "copy":
            generator: Any = CopyReferenceGenerator()
        else:
            pipe, lora_report = load_pipeline(
                spec.model or cfg.model, spec.lora, spec.lora_scale, dtype, device
            )
            _check_size(pipe, cfg.size)
            generator = _generator(pipe, cfg, use_reference=spec.kind == "megastyle")
        console.print(f"generating with {spec.name} ({spec.kind})")
        part = evaluate_transfer(
            {spec.name: generator},
            references,
            prompts,
            encoder,
            clip,
            seed=cfg.seed,
            batch_size=cfg.batch_size,
        )
        lora_reports[spec.name] = lora_report
        if result is None:
            result = part
        else:
            result.runs.update(part.runs)
        del generator
        gc.collect()
    assert result is not None  # specs is never empty
    result.settings = {"config": cfg.model_dump(mode="json"), "device": device, "dtype": str(dtype),
                       "lora_reports": lora_reports, "rejected_references": [r.item for r in ref_rejects]}  # fmt: skip
    transfer_table(result, console)
    files = write_transfer_report(result, cfg.output_dir, save_images=cfg.save_images, thumb=cfg.thumb)
    console.print("wrote " + ", ".join(str(p) for p in files.values()))
    return result


def register(app: typer.Typer) -> None:
    """Add ``transfer`` to ``app`` and ``transfer`` to the ``bench`` sub-app of ``bench_commands``."""
    from megastyle.cli.bench_commands import bench_app

    config_command(
        app, "transfer", TransferConfig, "Style transfer: style images × prompts → images, sheet, manifest."
    )(run_transfer)
    # bench_app is shared module state: register once even when several apps are built (tests).
    if not any(c.name == "transfer" for c in bench_app.registered_commands):
        config_command(
            bench_app,
            "transfer",
            TransferBenchConfig,
            "Style transfer: style score, text score, content leakage.",
        )(run_bench_transfer)
