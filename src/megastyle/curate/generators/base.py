"""The contract every text-to-image backend of the curation pipeline follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image


@dataclass(frozen=True)
class GenerationRequest:
    """One image to render: a style prompt, a content prompt, a seed and a square size."""

    style: str
    content: str
    seed: int
    size: int = 256


@runtime_checkable
class TextToImageBackend(Protocol):
    """Renders batches of (style, content) prompt pairs; ``name`` is recorded in the dataset."""

    name: str

    def generate(self, requests: list[GenerationRequest]) -> list[Image.Image]:
        """Render one RGB image per request, in order, deterministically from the request."""
        ...
