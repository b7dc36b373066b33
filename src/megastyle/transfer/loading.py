"""MegaStyle-FLUX from local files: a FLUX.1 pipeline folder (diffusers layout), an optional LoRA (official
kohya or ours), the dtype for the device. Load problems are ``ConfigError``s naming the file and the cause."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from megastyle.config import ConfigError
from megastyle.progress import quiet_library_bars, step

console = Console()

DType = Literal["auto", "bf16", "fp16", "fp32"]


def resolve_dtype(name: DType, device: str) -> Any:
    """'auto' → bf16 on CUDA, fp32 elsewhere."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def _named(path: Path, err: BaseException) -> str:
    """``err`` as '<path>: <cause>' (without naming the path twice)."""
    text = str(err)
    return text if text.startswith(str(path)) else f"{path}: {text}"


def load_pipeline(
    model: Path | None,
    lora: Path | None,
    lora_scale: float,
    dtype: Any,
    device: str,
    *,
    progress: bool = True,
) -> tuple[Any, dict[str, Any] | None]:
    """``MegaStyleFluxPipeline`` from a local folder, optionally with a LoRA → (pipeline, LoRA report or None)."""
    from megastyle.transfer.lora import load_megastyle_lora, read_lora_file
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    if model is None:
        raise ConfigError(
            "--model: no FLUX pipeline folder given (a local FLUX.1-dev folder, diffusers layout)"
        )
    if not model.is_dir():
        raise ConfigError(
            f"{model}: no such FLUX pipeline folder (a local FLUX.1-dev folder, diffusers layout)"
        )
    if not (model / "model_index.json").is_file():
        raise ConfigError(f"{model}: not a diffusers pipeline folder (no model_index.json)")
    if lora is not None:
        try:  # a bad LoRA file fails before the minutes a real FLUX takes to load
            read_lora_file(lora)
        except (OSError, ValueError) as err:
            raise ConfigError(_named(lora, err)) from err
    with quiet_library_bars(), step(f"transfer: load the FLUX pipeline from {model}", enabled=progress):
        try:
            pipe = MegaStyleFluxPipeline.from_pretrained(model, dtype=dtype, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{model}: cannot load a FLUX pipeline ({err})") from err
    report = None
    if lora is not None:
        try:
            loaded = load_megastyle_lora(pipe, lora, scale=lora_scale)
        except (OSError, ValueError, RuntimeError) as err:
            raise ConfigError(_named(lora, err)) from err
        report = {"path": str(lora), "scale": lora_scale, "placed_keys": len(loaded.placed),
                  "modules": len(loaded.modules), "unplaced": dict(loaded.unplaced)}  # fmt: skip
        for key, why in list(loaded.unplaced.items())[:10]:
            console.print(f"[yellow]LoRA key not placed[/yellow] {key}: {why}")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device), report


def check_size(pipe: Any, size: int) -> None:
    """Refuse a size the pipeline cannot pack into tokens (a multiple of 2 × the VAE scale factor)."""
    multiple = 2 * int(pipe.vae_scale_factor)
    if size % multiple:
        raise ConfigError(f"size {size} must be a multiple of {multiple} (2 × the VAE scale factor)")


SINGLE_FILE_SUFFIXES = (".safetensors", ".sft")


def load_flux_pipeline(
    model: Path,
    dtype: Any,
    device: str,
    *,
    transformer_file: Path | None = None,
    progress: bool = True,
) -> Any:
    """``MegaStyleFluxPipeline`` from a local FLUX folder (diffusers layout), without a LoRA.

    With ``transformer_file`` the transformer comes from that one file instead, as ComfyUI users keep FLUX
    (``models/unet/flux1-dev.safetensors``, BFL or diffusers key names), through diffusers'
    ``FluxTransformer2DModel.from_single_file`` with the folder's ``transformer/config.json``; the folder
    gives everything else, and its own transformer weights are never read (they may be absent).
    """
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    if not model.is_dir():
        raise ConfigError(
            f"{model}: no such FLUX pipeline folder (a local FLUX.1-dev folder, diffusers layout)"
        )
    if not (model / "model_index.json").is_file():
        raise ConfigError(f"{model}: not a diffusers pipeline folder (no model_index.json)")
    components: dict[str, Any] = {}
    if transformer_file is not None:
        components["transformer"] = load_single_file_transformer(
            transformer_file, model, dtype, progress=progress
        )
    with quiet_library_bars(), step(f"transfer: load the FLUX pipeline from {model}", enabled=progress):
        try:
            pipe = MegaStyleFluxPipeline.from_pretrained(
                model, dtype=dtype, local_files_only=True, **components
            )
        except (OSError, ValueError) as err:
            raise ConfigError(f"{model}: cannot load a FLUX pipeline ({err})") from err
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_single_file_transformer(path: Path, model: Path, dtype: Any, *, progress: bool = True) -> Any:
    """A FLUX transformer from one safetensors file, configured by ``model/transformer/config.json``.

    Read only as safetensors (never unpickled) and only from local files: the configuration is the folder's,
    so nothing is fetched from a hub.
    """
    from diffusers import FluxTransformer2DModel

    if not path.is_file():
        raise ConfigError(f"{path}: no such transformer file")
    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise ConfigError(
            f"{path}: a single-file transformer is read from {' or '.join(SINGLE_FILE_SUFFIXES)} only, never "
            "unpickled"
        )
    if not (model / "transformer" / "config.json").is_file():
        raise ConfigError(f"{model}: no transformer/config.json to configure the transformer in {path.name}")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    with quiet_library_bars(), step(f"transfer: load the FLUX transformer from {path}", enabled=progress):
        try:  # read here, so that .sft files are read as what they are (diffusers would unpickle them)
            state_dict = load_file(str(path))
        except SafetensorError as err:
            raise ConfigError(f"{path}: not a safetensors file ({err})") from err
        try:
            return FluxTransformer2DModel.from_single_file(
                state_dict,
                config=str(model),
                subfolder="transformer",
                torch_dtype=dtype,
                local_files_only=True,
            )
        except (OSError, ValueError, KeyError, IndexError, RuntimeError) as err:
            raise ConfigError(f"{path}: cannot load a FLUX transformer from this file ({err})") from err
