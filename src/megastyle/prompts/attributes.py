"""Style attributes: the structured form of a MegaStyle++ style prompt."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StyleAttributes:
    """The nine attributes of the MegaStyle++ style template; optional parts may be None."""

    identity: str
    dominant_colors: tuple[str, ...]
    accent_colors: tuple[str, ...]
    lighting: str
    surface: str
    medium: str
    pattern: str | None = None
    edges: str | None = None  # "soft" or "sharp"
    brushwork: str | None = None
