"""Pixel measurements → MegaStyle++ style attributes, one documented rule per attribute.

The thresholds were read off measurement distributions of ``procedural`` renders (a held-out grid is
scored in the tests), and the rules are physical enough to give sensible words on other images:
dark + saturated highlights reads as neon, block lattices as pixel art, strong 1-pixel steps as sharp
edges. Identity is a deterministic rule on the other words, not a recognition of art movements.
"""

from __future__ import annotations

from megastyle.curate.caption.measure import ColorCluster, Measurements
from megastyle.prompts.attributes import StyleAttributes
from megastyle.prompts.lexicon import word_count

_DOMINANT_SHARE = 0.12  # a cluster covering at least this much of the image is a dominant colour
_ACCENT_MIN_SHARE = 0.01  # smaller clusters are noise, not accents
_ACCENT_MIN_CHROMA = 0.07  # OKLab chroma: accents must be clearly coloured


def _fit(names: list[str], limit: int = 4, max_items: int = 3) -> tuple[str, ...]:
    """Distinct names in order while their words stay within ``limit`` (the template's colour limit)."""
    out: list[str] = []
    for name in names:
        if name not in out and len(out) < max_items and sum(map(word_count, [*out, name])) <= limit:
            out.append(name)
    return tuple(out)


def colors(clusters: tuple[ColorCluster, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(dominant, accent) colour names: dominant by area; accents small in area but high in chroma."""
    dominant = _fit([c.name for c in clusters if c.share >= _DOMINANT_SHARE]) or _fit([clusters[0].name])
    top_chroma = max((c.chroma for c in clusters if c.name in dominant), default=0.0)
    candidates = [
        c
        for c in clusters
        if c.name not in dominant
        and _ACCENT_MIN_SHARE <= c.share < _DOMINANT_SHARE
        and c.chroma >= max(_ACCENT_MIN_CHROMA, 0.8 * top_chroma)
    ]
    # Why chroma × √share: a vivid speck should beat a dull patch, but not a pure speck of noise.
    candidates.sort(key=lambda c: (-c.chroma * c.share**0.5, c.name))
    return dominant, _fit([c.name for c in candidates], max_items=2)


def lighting(m: Measurements) -> str:
    """Lighting from luma statistics: vignette, warmth, darkness, contrast and saturation."""
    if m.vignette >= 0.33:
        return "backlit rim"  # a bright centre against much darker borders
    if m.vignette >= 0.15 and m.warmth >= 0.15 and m.luma_mean < 0.45:
        return "candlelit"
    if m.vignette >= 0.15 and m.dark_share >= 0.2:
        return "dramatic chiaroscuro"
    if m.saturation >= 0.55 and m.warmth < 0.1 and m.luma_mean < 0.4:
        return "glowing neon"
    if m.luma_mean < 0.37 and m.warmth < 0.05:
        return "cool moonlit"
    if m.warmth >= 0.2:
        return "warm golden hour"
    if m.contrast < 0.12 and m.luma_mean > 0.45:
        return "hazy atmospheric"
    if m.contrast >= 0.25 and m.bright_share >= 0.1:
        return "harsh midday"
    if m.saturation < 0.25 and m.luma_mean > 0.45:
        return "soft diffuse"
    return "flat even"


def edges(m: Measurements) -> str | None:
    """Sharp when strong edges change within one pixel, soft when they spread over several."""
    if m.sharpness <= 0.0:
        return None  # no edges worth naming
    return "sharp" if m.sharpness >= 0.5 else "soft"


def pattern(m: Measurements) -> str | None:
    """A repeating pattern only when the spectrum has a clear coarse peak; its geometry names it."""
    peak = m.coarse_peak
    if peak.strength < 40:
        return None
    if peak.directions >= 3:
        return "hexagonal cells"
    if peak.directions == 2:
        return "checkerboard tiles" if m.two_tone >= 0.6 else "polka dots"
    axis = min(peak.angle % 90, 90 - peak.angle % 90)  # 0 when the waves run along x or y
    if axis > 20:
        return "diagonal stripes"
    return "horizontal bands" if abs(peak.angle - 90) < 20 else "wavy ripples"


def surface(m: Measurements) -> str:
    """Surface from the fine residual: level (grain), outliers (specks), periodicity (weave), highlights."""
    if m.fine_peak.strength >= 300 and m.fine_peak.period <= 5.5:
        return "canvas weave"
    if m.speckle >= 12 and m.fine_texture < 0.02:
        return "speckled"  # rare strong outliers over a quiet residual
    if m.fine_texture >= 0.06:
        return "rough grainy"
    if m.bright_share >= 0.02 and m.bright_share < 0.12 and m.saturation >= 0.4:
        return "glossy"  # small bright highlights on an otherwise coloured image
    if m.sharpness < 0.5 and m.luma_mean < 0.35:
        return "velvety"
    if m.warmth >= 0.15 and m.edge_density >= 0.1 and m.saturation < 0.5:
        return "cracked aged"
    return "smooth matte"


def brushwork(m: Measurements) -> str | None:
    """Stroke character from orientation coherence, cross energy and texture strength."""
    if m.fine_texture < 0.004 and m.edge_density < 0.02:
        return "smooth blended gradients"
    if m.cross >= 0.4:
        return "cross hatched lines"
    if m.coherence < 0.35:
        return "dotted touches" if m.fine_texture >= 0.03 else "short choppy dabs"
    if m.coherence >= 0.75:
        return "fine precise strokes" if m.fine_texture < 0.02 else "bold thick strokes"
    if m.neutral_light >= 0.1 and m.edge_density >= 0.1:
        return "dry brush strokes"  # paper showing through between strokes
    if m.edge_density >= 0.15:
        return "loose expressive strokes"
    return None


def _near(value: float, target: float, tolerance: float) -> bool:
    return abs(value - target) <= tolerance


def medium(m: Measurements, dominant: tuple[str, ...]) -> str:
    """Medium from the strongest cue: lattices, screens, darkness + glow, paper, tone count, texture."""
    fine, sat = m.fine_peak, m.saturation
    bluish = m.warmth <= -0.05 and any("blue" in c or c in ("navy", "indigo", "teal") for c in dominant)
    if _near(fine.period, 8, 0.5) and fine.strength >= 300 and m.coherence < 0.5:
        return "mosaic"  # a square tile lattice with grout lines
    if _near(fine.period, 6, 0.5) and fine.strength >= 300:
        return "halftone print"  # a regular dot screen
    if bluish:
        return "blueprint"
    if m.blockiness >= 0.06:
        return "pixel art"  # most steps fall on one block lattice
    if m.luma_median < 0.15 and m.dark_share >= 0.5 and (m.vivid_share >= 0.02 or sat >= 0.35):
        return "neon glow"  # a dark ground lit by a few bright, coloured lines
    if fine.strength < 70 and m.coherence < 0.45 and m.fine_texture >= 0.01:
        return "stipple"  # dense isotropic dots without any regular screen
    if _near(fine.period, 5, 0.35) and fine.strength >= 150 and sat < 0.5:
        return "pencil hatching"
    if m.dark_share >= 0.2 and sat >= 0.5 and m.coherence < 0.7:
        return "stained glass"  # dark lead lines around saturated pieces
    if sat < 0.3 and m.fine_texture >= 0.05:
        return "woodcut"  # two inks with carved texture
    if sat < 0.35 and m.fine_texture < 0.02 and m.luma_median < 0.4:
        return "charcoal sketch"
    if sat < 0.3:
        return "ink wash"
    if m.fine_texture < 0.01 and m.speckle >= 7:
        return "flat vector" if sat >= 0.6 else "paper cut"  # clean fills, no fine texture
    if m.edge_density >= 0.15 and sat >= 0.4:
        return "crayon"
    if m.coherence < 0.6:
        return "oil impasto"
    return "watercolor"


def identity(medium_name: str, lighting_name: str, m: Measurements) -> str:
    """A deterministic identity rule on the medium, the light and the colour statistics."""
    by_medium = {
        "pixel art": "cyberpunk" if m.dark_share >= 0.3 else "retro poster",
        "neon glow": "cyberpunk",
        "halftone print": "pop art",
        "woodcut": "ukiyo-e",
        "ink wash": "ukiyo-e",
        "stained glass": "art nouveau",
        "mosaic": "art deco",
        "blueprint": "bauhaus",
        "pencil hatching": "botanical illustration",
        "paper cut": "folk art",
        "flat vector": "minimalism" if m.palette_size <= 4 else "bauhaus",
        "crayon": "children's book",
    }
    if medium_name in by_medium:
        return by_medium[medium_name]
    if lighting_name in ("dramatic chiaroscuro", "candlelit"):
        return "baroque"
    if m.saturation >= 0.6 and m.contrast >= 0.25:
        return "expressionism"
    if m.sharpness < 0.5:
        return "impressionism"
    return "surrealism" if m.warmth < 0 else "cubism"


def style_attributes(m: Measurements) -> StyleAttributes:
    """All nine attributes from one set of measurements."""
    dominant, accent = colors(m.clusters)
    light = lighting(m)
    medium_name = medium(m, dominant)
    return StyleAttributes(
        identity=identity(medium_name, light, m),
        dominant_colors=dominant,
        accent_colors=accent,
        lighting=light,
        surface=surface(m),
        medium=medium_name,
        pattern=pattern(m),
        edges=edges(m),
        brushwork=brushwork(m),
    )
