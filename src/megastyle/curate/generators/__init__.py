"""Text-to-image backends for the generate stage, looked up by name."""

from __future__ import annotations

from typing import Any

from megastyle.curate.generators.base import GenerationRequest, TextToImageBackend

BACKENDS = ("procedural",)


def load_backend(name: str, **options: Any) -> TextToImageBackend:
    """Instantiate the backend called ``name`` (``procedural`` needs no weights)."""
    if name == "procedural":
        from megastyle.curate.generators.procedural import ProceduralRenderer

        return ProceduralRenderer(**options)
    raise ValueError(f"unknown text-to-image backend {name!r}; known: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "GenerationRequest", "TextToImageBackend", "load_backend"]
