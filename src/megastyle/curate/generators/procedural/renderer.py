"""``ProceduralRenderer``: the offline text-to-image backend ``procedural``.

Pipeline: layout → label map → palette fill → pattern → identity grade → medium → brushwork →
surface → lighting → edges. The style prompt alone decides the palette and every technique; the
content prompt (plus the seed) alone decides the layout, so style and content are disentangled
by construction, which is what a style encoder is trained to recover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import numpy as np
from PIL import Image

from megastyle.curate.generators.base import GenerationRequest
from megastyle.curate.generators.procedural.effects import (
    apply_brushwork,
    apply_edges,
    apply_lighting,
    apply_look,
    apply_surface,
    to_uint8,
)
from megastyle.curate.generators.procedural.layout import GROUND, SKY, LabelMap, label_map
from megastyle.curate.generators.procedural.media import Canvas, apply_medium
from megastyle.curate.generators.procedural.style import (
    Palette,
    StyleSpec,
    object_color,
    style_spec,
    vary_palette,
)
from megastyle.curate.generators.procedural.textures import F32, color_edges, grid, mix, pattern_mask
from megastyle.prompts.attributes import StyleAttributes
from megastyle.prompts.content import ContentPrompt
from megastyle.prompts.vocabulary import stable_hash

MIN_SIZE, MAX_SIZE = 16, 2048
# Media built from fine lines, dots, tiles or pixels: stroke textures laid over them would only add
# noise, so their brushwork shapes the colour field before the medium draws it.
LINE_MEDIA = frozenset(
    {"pencil hatching", "pixel art", "halftone print", "woodcut", "neon glow", "stipple", "blueprint", "mosaic",
     "stained glass"}
)  # fmt: skip


@lru_cache(maxsize=4096)
def parse_style(text: str) -> StyleAttributes:
    """Style prompt text → attributes via ``megastyle.prompts.read_style_text`` (never fails)."""
    from megastyle.prompts import read_style_text

    try:
        return read_style_text(text)
    except ValueError:  # documented never to fail; stay total anyway: hash every attribute
        return StyleAttributes(text, (), (), text, text, text)


@lru_cache(maxsize=4096)
def parse_content(text: str) -> ContentPrompt:
    """Content prompt text → objects and relations via ``megastyle.prompts.parse_content_prompt``."""
    from megastyle.prompts import parse_content_prompt

    try:
        return parse_content_prompt(text)
    except ValueError:  # an empty prompt: an empty scene (sky and ground)
        return ContentPrompt(objects=())


def _far_from(c: np.ndarray, ref: np.ndarray) -> np.ndarray:
    if np.abs(c - ref).sum() >= 0.25:
        return c
    return c * 0.65 if float(ref.mean()) > 0.45 else mix(c, 1.0, 0.45)


def region_colors(
    palette: Palette, layout: LabelMap, own: Sequence[np.ndarray] = (), weight: float = 0.0
) -> np.ndarray:
    """(256, 3) colour of every label: sky, ground, then each object part by its colour role.

    ``own`` holds each object group's own colour (``object_color``); bodies and accents move that far
    (``weight``) from the palette towards it.
    """
    lut = np.zeros((256, 3), F32)
    lut[SKY], lut[GROUND] = palette.background, palette.ground
    shift = [stable_hash(name, "body") for name in layout.names]
    for label in np.flatnonzero(layout.group >= 0):
        g, part = int(layout.group[label]), int(layout.part[label])
        if part == 0:
            lut[label] = palette.bodies[(g + shift[g]) % len(palette.bodies)]
        elif part == 1:
            lut[label] = palette.accents[g % len(palette.accents)]
        else:
            lut[label] = palette.dark if part == 2 else palette.light
        if weight and part in (0, 1) and g < len(own):
            lut[label] = mix(lut[label], own[g] * (1.0 if part == 0 else 0.75), weight)
    return lut


def flat_scene(
    spec: StyleSpec, layout: LabelMap, size: int, own: Sequence[np.ndarray] = (), weight: float = 0.0
) -> tuple[np.ndarray, np.ndarray | None]:
    """The scene in flat palette colours with the background pattern; returns (image, pattern mask)."""
    pal = spec.palette
    labels = layout.labels
    img = np.take(region_colors(pal, layout, own, weight), labels, axis=0)
    # A gentle sky gradient toward the horizon, so even a plain background is not a single colour.
    y = grid(size).y
    shade = np.where(labels == SKY, 0.9 + 0.16 * np.minimum(y / max(layout.horizon, 1), 1), 1.0)
    shade = np.where(labels == GROUND, 1.0 - 0.12 * (y - layout.horizon) / size, shade)
    img *= shade[..., None]
    if spec.pattern is None:
        return img, None
    mask = pattern_mask(spec.pattern, size, stable_hash(spec.pattern, "phase")) * (labels < 2)
    motif = np.stack([_far_from(mix(c, pal.accents[0], 0.6), c) for c in (pal.background, pal.ground)])
    motif_img = motif[np.minimum(labels, 1)]
    return mix(img, motif_img, mask[..., None] * 0.85), mask


class ProceduralRenderer:
    """Deterministic, weight-free text-to-image backend: style prompt → technique, content prompt → scene."""

    name = "procedural"

    def __init__(
        self,
        default_size: int = 256,
        shade_variation: float = 0.0,
        content_color: float = 0.0,
        object_scale: float = 1.0,
    ) -> None:
        for name, value in (("shade_variation", shade_variation), ("content_color", content_color)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"procedural: {name} must be in [0, 1], got {value}")
        if not 0.25 <= object_scale <= 4.0:
            raise ValueError(f"procedural: object_scale must be in [0.25, 4], got {object_scale}")
        # Why: how much of the frame the content fills decides how much it can show through a style.
        self.object_scale = float(object_scale)
        self.default_size = default_size
        # Why: a real text-to-image model paints one palette in different shades every time, so
        # colour statistics vary inside a style and a colour histogram is no longer a perfect key.
        self.shade_variation = float(shade_variation)
        # Why: a real model keeps some of what the content prompt says about colour ("a wooden bench" stays
        # brownish in any style), so content leaks into colour statistics, as it does in real datasets.
        self.content_color = float(content_color)

    def render_array(
        self, style: StyleAttributes, content: ContentPrompt, seed: int, size: int = 256
    ) -> np.ndarray:
        """Render parsed prompts to an (size, size, 3) uint8 array."""
        size = int(np.clip(size, MIN_SIZE, MAX_SIZE))
        spec = style_spec(style)
        if self.shade_variation:
            spec = replace(spec, palette=vary_palette(spec.palette, int(seed), self.shade_variation))
        layout = label_map(content, int(seed), size, self.object_scale)
        own = [object_color(o.name, o.modifiers) for o in content.objects[: len(layout.names)]]
        flat, pattern = flat_scene(spec, layout, size, own, self.content_color)
        variant = (stable_hash(spec.medium, "variant") + int(seed)) % 4
        cv = Canvas(
            size, layout, spec, int(seed), np.random.default_rng(0), variant, color_edges(flat), pattern
        )
        # Each stage draws noise from its own stream keyed by (stage, attribute value, seed): the
        # content never changes textures, and changing one attribute leaves the others' noise alone.
        img = apply_look(flat, cv)
        if spec.medium in LINE_MEDIA:  # brush the colour field first; the medium then translates it
            img = apply_brushwork(img, cv.stage(f"brushwork/{spec.brushwork}"))
        img = apply_medium(img, cv.stage(f"medium/{spec.medium}"))
        if spec.medium not in LINE_MEDIA:
            img = apply_brushwork(img, cv.stage(f"brushwork/{spec.brushwork}"))
        img = apply_surface(img, cv.stage(f"surface/{spec.surface}"))
        img = apply_lighting(img, cv)
        img = apply_edges(img, cv)
        return to_uint8(img)

    def render_parsed(
        self, style: StyleAttributes, content: ContentPrompt, seed: int, size: int = 256
    ) -> Image.Image:
        """Render parsed prompts to an RGB PIL image."""
        return Image.fromarray(self.render_array(style, content, seed, size), "RGB")

    def render(self, style: str, content: str, seed: int, size: int | None = None) -> Image.Image:
        """Render a style prompt and a content prompt (free text) to an RGB PIL image."""
        return self.render_parsed(parse_style(style), parse_content(content), seed, size or self.default_size)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        """Render one image per request, in order (the ``TextToImageBackend`` contract)."""
        return [self.render(r.style, r.content, r.seed, r.size) for r in requests]
