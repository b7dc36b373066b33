"""Text-to-image backends for the generate stage, looked up by name."""

from __future__ import annotations

from typing import Any

from megastyle.curate.generators.base import GenerationRequest, TextToImageBackend
from megastyle.plugins import is_import_path, load_object

BACKENDS = ("procedural", "diffusers")


def load_backend(name: str, **options: Any) -> TextToImageBackend:
    """Instantiate the backend called ``name`` (``procedural`` needs no weights; ``module:Class`` imports one)."""
    if name == "procedural":
        from megastyle.curate.generators.procedural import ProceduralRenderer

        return ProceduralRenderer(**options)
    if name == "diffusers":  # any local diffusers text-to-image pipeline (Qwen-Image, FLUX, SDXL)
        from megastyle.curate.generators.diffusers_backend import DiffusersBackend

        return DiffusersBackend(**options)
    if is_import_path(name):
        return load_object(name)(**options)
    raise ValueError(
        f"unknown text-to-image backend {name!r}; known: {', '.join(BACKENDS)}, or an import path module:Class"
    )


__all__ = ["BACKENDS", "GenerationRequest", "TextToImageBackend", "load_backend"]
