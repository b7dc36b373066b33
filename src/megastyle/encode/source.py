"""Where a command's style encoder comes from: a megastyle or HF SigLIP/CLIP folder, or the official ``.pth``
on a local SigLIP folder that gives the architecture."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from rich.console import Console

from megastyle.config import CommandConfig, ConfigError
from megastyle.devices import resolve_device
from megastyle.progress import step

if TYPE_CHECKING:
    from megastyle.encode.model import StyleEncoder

console = Console(stderr=True)

Dtype = Literal["float32", "bfloat16", "float16"]


class EncoderSource(CommandConfig):
    """Where the encoder comes from: our/HF folder, or the official .pth on a base SigLIP folder."""

    encoder: Path | None = Field(
        None, description="Encoder folder (saved by megastyle, or a local HF SigLIP/CLIP folder)."
    )
    official_pth: Path | None = Field(
        None, description="Official megastyle_encoder.pth (or .safetensors) state dict; needs --base-model."
    )
    base_model: Path | None = Field(
        None, description="Local SigLIP folder giving the architecture for --official-pth."
    )
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...")
    dtype: Dtype = Field("float32", description="Weights dtype for inference.")


def load_encoder_from_config(cfg: EncoderSource) -> StyleEncoder:
    """Build the configured encoder (folder, or official .pth + base) on its device and dtype."""
    import torch

    from megastyle.encode.model import StyleEncoder
    from megastyle.encode.official import load_official_encoder

    dtype = getattr(torch, cfg.dtype)
    device = resolve_device(cfg.device)
    if cfg.official_pth is not None:
        if cfg.base_model is None:
            raise ConfigError(
                "--official-pth needs --base-model (a local SigLIP folder for the architecture)"
            )
        if cfg.encoder is not None:
            raise ConfigError("give either --encoder or --official-pth, not both")
        with step(f"load the official encoder {cfg.official_pth} on {cfg.base_model}"):
            encoder, report = load_official_encoder(
                cfg.official_pth, cfg.base_model, device=device, dtype=dtype
            )
        console.print(
            f"[yellow]load report[/yellow]: {report.summary()}" if not report.ok else report.summary()
        )
        return encoder
    if cfg.encoder is None:
        raise ConfigError("no encoder: set --encoder FOLDER or --official-pth FILE --base-model FOLDER")
    try:
        with step(f"load the style encoder from {cfg.encoder}"):
            return StyleEncoder.from_pretrained(cfg.encoder, device=device, dtype=dtype)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
