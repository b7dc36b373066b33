"""``megastyle app``: what it opens and where it listens.

With no arguments after ``make quickstart`` it opens the quickstart's run: its shards, its trained tiny
encoder and its tiny untrained FLUX. Real models are given by path and served by the same page.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from megastyle.config import CommandConfig


class AppConfig(CommandConfig):
    """Settings of the web app."""

    toml_section: ClassVar[str] = "app"

    run: Path | None = Field(
        Path("runs/quickstart"),
        description="A quickstart run folder: its dataset, trained encoder and tiny FLUX are the defaults.",
    )
    flux: Path | None = Field(
        None, description="A local FLUX.1 pipeline folder (default: the run's tiny FLUX)."
    )
    lora: Path | None = Field(None, description="MegaStyle LoRA: the official kohya file or ours.")
    encoder: Path | None = Field(
        None, description="Style encoder: a megastyle/HF folder, or the official .pth (with --base-model)."
    )
    base_model: Path | None = Field(
        None, description="Local SigLIP folder giving the architecture of a .pth."
    )
    index: Path | None = Field(
        None,
        description="A search index folder or an embeddings file (default: the dataset, embedded at start).",
    )
    data: Path | None = Field(
        None,
        description="Shards (ours or the MegaStyle-1.4M layout) or a curate run folder (default: the run's).",
    )
    host: str = Field(
        "127.0.0.1", description="Address to listen on; anything but loopback exposes the app to the network."
    )
    port: int = Field(7860, ge=1, le=65535, description="Port to listen on.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    work_dir: Path = Field(
        Path("runs/app"), description="Folder for the app's own files: embedded indexes, transfer results."
    )
    max_upload_mb: float = Field(20.0, gt=0, description="Largest upload accepted, in megabytes.")
    styles_per_page: int = Field(12, ge=1, le=100, description="Styles per page in the dataset explorer.")
