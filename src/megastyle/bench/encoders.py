"""The encoders a benchmark compares: what an embedder is, and the ones a config can name.

An embedder is anything with ``embed_images`` returning L2-normalised rows: ``StyleEncoder`` and the
baselines of ``bench.baselines`` (colour histogram, Gram, random, CSD, any HF SigLIP/CLIP tower).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from megastyle.config import ConfigError


class Embedder(Protocol):
    """Anything that turns PIL images into an (n, d) float array (StyleEncoder, the baselines)."""

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Embed ``images`` → (n, d) float32."""
        ...


EncoderKind = Literal[
    "megastyle", "siglip", "clip", "csd", "color_histogram", "gram", "random", "random_init"
]


class EncoderSpec(BaseModel):
    """One encoder to benchmark."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Row name in the tables.")
    kind: EncoderKind = Field(
        description="megastyle/siglip/clip: a local encoder or HF folder; csd: a CSD .pth; "
        "color_histogram, gram, random: training-free; random_init: the architecture of `path`, random weights."
    )
    path: Path | None = Field(None, description="Weights folder or file (kinds that need weights).")
    options: dict[str, Any] = Field(default_factory=dict, description="Extra constructor options.")


def default_encoders() -> list[EncoderSpec]:
    """The training-free encoders every benchmark can run with no weights."""
    return [
        EncoderSpec(name="color_histogram", kind="color_histogram"),
        EncoderSpec(name="gram", kind="gram"),
        EncoderSpec(name="random", kind="random"),
    ]


def build_embedder(spec: EncoderSpec, device: str = "cpu") -> Embedder:
    """Instantiate the embedder ``spec`` describes (ConfigError names what is missing)."""
    from megastyle.bench import baselines

    if spec.kind == "color_histogram":
        return baselines.ColorHistogramEmbedder(**spec.options)
    if spec.kind == "gram":
        return baselines.GramEmbedder(**{"device": device, **spec.options})
    if spec.kind == "random":
        return baselines.RandomEmbedder(**spec.options)
    if spec.path is None or not spec.path.exists():
        raise ConfigError(f"encoder {spec.name!r} ({spec.kind}) needs an existing path, got {spec.path}")
    if spec.kind == "csd":
        return baselines.CSDEmbedder.from_checkpoint(spec.path, device=device, **spec.options)
    if spec.kind == "random_init":
        import torch

        from megastyle.encode.model import StyleEncoder

        like = StyleEncoder.from_pretrained(spec.path)
        # Same tower and preprocessing as `path`, fresh seeded weights: the encoder's untrained self.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(spec.options.get("seed", 0)))
            encoder = StyleEncoder(like.config)
        return encoder.eval().to(device)
    return baselines.HFTowerEmbedder(spec.path, device=device)
