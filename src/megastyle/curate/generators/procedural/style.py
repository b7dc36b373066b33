"""Style prompt attributes → concrete rendering parameters (palette, lighting, canonical techniques)."""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from megastyle.prompts.attributes import StyleAttributes
from megastyle.prompts.vocabulary import (
    BRUSHWORK,
    COLORS,
    MEDIA,
    PATTERNS,
    SURFACES,
    stable_hash,
)

RGB = tuple[float, float, float]

# Words that point an unknown attribute at a known one before falling back to a hash.
MEDIUM_SYNONYMS: dict[str, str] = {
    "watercolour": "watercolor",
    "aquarelle": "watercolor",
    "gouache": "watercolor",
    "sumi": "ink wash",
    "ink": "ink wash",
    "oil": "oil impasto",
    "acrylic": "oil impasto",
    "impasto": "oil impasto",
    "pencil": "pencil hatching",
    "graphite": "pencil hatching",
    "pixel": "pixel art",
    "8-bit": "pixel art",
    "mosaic": "mosaic",
    "tile": "mosaic",
    "glass": "stained glass",
    "halftone": "halftone print",
    "comic": "halftone print",
    "screen print": "halftone print",
    "woodcut": "woodcut",
    "linocut": "woodcut",
    "woodblock": "woodcut",
    "engraving": "woodcut",
    "neon": "neon glow",
    "paper": "paper cut",
    "collage": "paper cut",
    "stipple": "stipple",
    "pointillism": "stipple",
    "vector": "flat vector",
    "digital": "flat vector",
    "crayon": "crayon",
    "pastel": "crayon",
    "wax": "crayon",
    "charcoal": "charcoal sketch",
    "sketch": "charcoal sketch",
    "blueprint": "blueprint",
    "technical": "blueprint",
}


def normalize_words(text: str) -> str:
    """Lower-case, British → American spelling of the words we match, single spaces."""
    text = text.lower().replace("colour", "color").replace("grey", "gray")
    return re.sub(r"\s+", " ", text).strip()


def canonical(
    word: str | None, vocab: tuple[str, ...], salt: str, synonyms: dict[str, str] | None = None
) -> str | None:
    """Map a free attribute phrase to a vocabulary entry: exact, synonym, shared word, else a stable hash."""
    if word is None or not word.strip():
        return None
    text = normalize_words(word)
    if text in vocab:
        return text
    contained = [v for v in vocab if v in text]
    if contained:
        return max(contained, key=len)
    for key, target in (synonyms or {}).items():
        if key in text:
            return target
    tokens = set(re.findall(r"[a-z]+", text))
    best = max(vocab, key=lambda v: (len(tokens & set(v.split())), -vocab.index(v)))
    if tokens & set(best.split()):
        return best
    return vocab[stable_hash(text, salt) % len(vocab)]


# --- colour -----------------------------------------------------------------------------------

_LIGHTER = ("light", "pale", "pastel", "soft", "faded")
_DARKER = ("dark", "deep", "dim", "night")
_BRIGHTER = ("bright", "vivid", "electric", "neon", "hot")
_MUTED = ("muted", "dusty", "dull", "smoky", "grayish")


@lru_cache(maxsize=4096)
def color_rgb(name: str) -> RGB:
    """sRGB in [0, 1] of a colour phrase: vocabulary name (with light/dark modifiers) or a stable hash."""
    text = normalize_words(name)
    if text in COLORS:
        return tuple(c / 255 for c in COLORS[text])  # type: ignore[return-value]
    known = [k for k in COLORS if re.search(rf"\b{re.escape(k)}\b", text)]
    if known:
        rgb = np.array(COLORS[max(known, key=len)], np.float64) / 255
    else:
        h = stable_hash(text, "color")
        hue = (h & 0xFFFF) / 0x10000
        sat = 0.35 + 0.55 * ((h >> 16) & 0xFF) / 255
        val = 0.35 + 0.6 * ((h >> 24) & 0xFF) / 255
        rgb = np.array(colorsys.hsv_to_rgb(hue, sat, val))
    words = set(text.split())
    if words & set(_LIGHTER):
        rgb = rgb + (1 - rgb) * 0.4
    if words & set(_DARKER):
        rgb = rgb * 0.6
    gray = rgb.mean()
    if words & set(_BRIGHTER):
        rgb = np.clip(gray + (rgb - gray) * 1.35, 0, 1)
    if words & set(_MUTED):
        rgb = gray + (rgb - gray) * 0.55
    return tuple(float(c) for c in rgb)  # type: ignore[return-value]


def _luma(c: np.ndarray) -> float:
    return float(c @ np.array([0.299, 0.587, 0.114]))


def _separate(c: np.ndarray, ref: np.ndarray, min_dist: float = 0.28) -> np.ndarray:
    """Push ``c`` lighter or darker until it stands out from ``ref`` (objects must not vanish)."""
    if np.abs(c - ref).sum() >= min_dist and abs(_luma(c) - _luma(ref)) >= 0.2 * min_dist / 0.28:
        return c
    return c * 0.55 if _luma(ref) > 0.45 else c + (1 - c) * 0.5


@dataclass(frozen=True)
class Palette:
    """Colour roles derived from the style's dominant and accent colours (float32 RGB in [0, 1])."""

    background: np.ndarray
    ground: np.ndarray
    bodies: tuple[np.ndarray, ...]
    accents: tuple[np.ndarray, ...]
    dark: np.ndarray
    light: np.ndarray
    colors: np.ndarray  # (K, 3) every role colour, for palette quantisation

    @property
    def ink(self) -> np.ndarray:
        """Darkest palette colour pulled towards black: line and print ink."""
        return (self.dark * 0.6).astype(np.float32)

    @property
    def paper(self) -> np.ndarray:
        """Near-white paper tinted by the lightest palette colour."""
        return (0.75 + 0.25 * self.light).astype(np.float32)


def make_palette(dominant: tuple[str, ...], accents: tuple[str, ...], key: str) -> Palette:
    """Assign roles: background/ground from the first dominant colours, bodies from the rest, accents."""
    dom = [np.array(color_rgb(c)) for c in dominant if c.strip()]
    if not dom:
        dom = [np.array(color_rgb(f"{key} {i}")) for i in range(2)]
    acc = [np.array(color_rgb(c)) for c in accents if c.strip()]
    if not acc:
        # Why: the template allows no accents; take a darker twin of a dominant colour instead.
        acc = [dom[-1] * 0.5 + np.array(color_rgb(f"{key} accent")) * 0.3]
    bg = dom[0]
    ground = dom[1] if len(dom) > 1 else dom[0] * 0.72
    bodies = [*dom[1:], dom[0] * 0.6 + 0.1] if len(dom) > 1 else [dom[0] * 0.55, dom[0] * 0.55 + 0.4]
    bodies = [_separate(b, bg) for b in bodies]
    acc = [_separate(a, bg, 0.2) for a in acc]
    everything = np.array([bg, ground, *bodies, *acc])
    lumas = everything @ np.array([0.299, 0.587, 0.114])
    dark = everything[lumas.argmin()] * 0.45
    light = everything[lumas.argmax()] * 0.4 + 0.6
    f = np.float32
    colors = np.array([*everything, dark, light], f)
    return Palette(
        bg.astype(f),
        ground.astype(f),
        tuple(b.astype(f) for b in bodies),
        tuple(a.astype(f) for a in acc),
        dark.astype(f),
        light.astype(f),
        colors,
    )


def vary_palette(palette: Palette, seed: int, amount: float) -> Palette:
    """The palette as one rendering of it: every colour shifted by one seeded hue/saturation/value change.

    A text-to-image model never paints "red and brown" in the same shades twice; ``amount`` 1 means
    hue ±0.06 turns, saturation and value ×e^±0.25.
    """
    if amount <= 0:
        return palette
    rng = np.random.default_rng([stable_hash("palette variation"), seed & 0xFFFFFFFF])
    dh, ds, dv = rng.uniform(-1, 1, 3) * amount * np.array([0.06, 0.25, 0.25])

    def shift(c: np.ndarray) -> np.ndarray:
        h, s, v = colorsys.rgb_to_hsv(*np.clip(c, 0, 1).tolist())
        rgb = colorsys.hsv_to_rgb((h + dh) % 1.0, min(1.0, s * np.exp(ds)), min(1.0, v * np.exp(dv)))
        return np.asarray(rgb, np.float32)

    return Palette(
        shift(palette.background),
        shift(palette.ground),
        tuple(shift(c) for c in palette.bodies),
        tuple(shift(c) for c in palette.accents),
        shift(palette.dark),
        shift(palette.light),
        np.stack([shift(c) for c in palette.colors]),
    )


# Colours that material words give an object when a content prompt names them ("a wooden bench").
MATERIAL_COLORS: dict[str, str] = {
    "wooden": "brown", "wood": "brown", "metal": "silver", "metallic": "silver", "steel": "slate gray",
    "iron": "charcoal", "golden": "gold", "gold": "gold", "silver": "silver", "copper": "rust",
    "bronze": "ochre", "brass": "gold", "stone": "slate gray", "marble": "white", "glass": "sky blue",
    "paper": "beige", "leather": "brown", "wool": "cream", "plastic": "white", "rusty": "rust",
    "snowy": "white", "ceramic": "ivory", "clay": "umber", "brick": "maroon",
}  # fmt: skip


def object_color(name: str, modifiers: tuple[str, ...]) -> np.ndarray:
    """The colour a content prompt gives an object: a colour word, else a material, else its own hue."""
    for word in modifiers:
        if normalize_words(word) in COLORS:
            return np.asarray(color_rgb(word), np.float32)
    for word in modifiers:
        if word.lower() in MATERIAL_COLORS:
            return np.asarray(color_rgb(MATERIAL_COLORS[word.lower()]), np.float32)
    return np.asarray(color_rgb(name), np.float32)  # stable per noun: every "fish" has the same hue


# --- lighting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lighting:
    """Global light: gain/contrast/saturation, colour tint, vignette, a directional ramp, haze, glow, rim."""

    gain: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    tint: RGB = (1.0, 1.0, 1.0)
    vignette: float = 0.0
    angle: float = -90.0  # degrees; where the light comes from (-90 = top)
    directional: float = 0.0
    haze: float = 0.0
    haze_color: RGB = (0.85, 0.87, 0.9)
    glow: float = 0.0
    glow_pos: tuple[float, float] = (0.0, 0.0)
    glow_radius: float = 0.5
    glow_color: RGB = (1.0, 0.9, 0.7)
    rim: float = 0.0


# fmt: off
LIGHTS: dict[str, Lighting] = {
    "soft diffuse": Lighting(1.06, 0.82, 0.92, (1.0, 1.0, 1.0), 0.1, -90, 0.1, 0.06),
    "warm golden hour": Lighting(1.0, 1.05, 1.15, (1.12, 0.96, 0.7), 0.25, 200, 0.35, glow=0.35,
                                 glow_pos=(-0.9, -0.3), glow_radius=0.8, glow_color=(1.0, 0.7, 0.3)),
    "cool moonlit": Lighting(0.7, 0.95, 0.55, (0.78, 0.9, 1.22), 0.45, -45, 0.2, glow=0.18, glow_pos=(0.6, -0.7),
                             glow_radius=0.3, glow_color=(0.8, 0.9, 1.0)),
    "harsh midday": Lighting(1.12, 1.4, 1.05, (1.02, 1.02, 0.97), 0.0, -90, 0.15),
    "dramatic chiaroscuro": Lighting(0.95, 1.45, 0.9, (1.03, 0.98, 0.9), 0.55, 215, 0.8),
    "backlit rim": Lighting(0.72, 1.1, 1.0, (1.0, 0.98, 0.95), 0.3, 90, 0.0, glow=0.65, glow_pos=(0.0, -0.25),
                            glow_radius=0.7, glow_color=(1.0, 0.95, 0.82), rim=0.9),
    "flat even": Lighting(1.0, 0.95),
    "hazy atmospheric": Lighting(1.0, 0.78, 0.7, haze=0.42, haze_color=(0.82, 0.85, 0.9)),
    "glowing neon": Lighting(0.8, 1.2, 1.5, (1.05, 0.8, 1.2), 0.4, glow=0.4, glow_pos=(0.5, 0.6), glow_radius=0.6,
                             glow_color=(1.0, 0.2, 0.8)),
    "candlelit": Lighting(0.72, 1.1, 1.1, (1.22, 0.88, 0.55), 0.45, glow=0.55, glow_pos=(0.0, 0.45),
                          glow_radius=0.45, glow_color=(1.0, 0.6, 0.25)),
}
# fmt: on

_LIGHT_WORDS: dict[str, str] = {
    "golden": "warm golden hour",
    "sunset": "warm golden hour",
    "warm": "warm golden hour",
    "moon": "cool moonlit",
    "night": "cool moonlit",
    "cool": "cool moonlit",
    "noon": "harsh midday",
    "harsh": "harsh midday",
    "chiaroscuro": "dramatic chiaroscuro",
    "dramatic": "dramatic chiaroscuro",
    "back": "backlit rim",
    "rim": "backlit rim",
    "flat": "flat even",
    "haz": "hazy atmospheric",
    "fog": "hazy atmospheric",
    "mist": "hazy atmospheric",
    "neon": "glowing neon",
    "candle": "candlelit",
    "fire": "candlelit",
    "soft": "soft diffuse",
    "diffuse": "soft diffuse",
}


@lru_cache(maxsize=1024)
def lighting_for(name: str) -> Lighting:
    """Lighting parameters for a lighting phrase; unknown phrases get keyword or hashed parameters."""
    text = normalize_words(name)
    if text in LIGHTS:
        return LIGHTS[text]
    for word, target in _LIGHT_WORDS.items():
        if word in text:
            return LIGHTS[target]
    r = np.random.default_rng(stable_hash(text, "lighting"))
    return Lighting(
        gain=float(r.uniform(0.65, 1.1)),
        contrast=float(r.uniform(0.8, 1.35)),
        saturation=float(r.uniform(0.7, 1.3)),
        tint=tuple(float(t) for t in r.uniform(0.85, 1.15, 3)),  # type: ignore[arg-type]
        vignette=float(r.uniform(0, 0.5)),
        angle=float(r.uniform(0, 360)),
        directional=float(r.uniform(0, 0.5)),
    )


# --- identity "look" --------------------------------------------------------------------------

# (saturation, contrast, warmth): a mild global grade so the identity word also leaves a trace.
LOOKS: dict[str, tuple[float, float, float]] = {
    "impressionism": (1.1, 0.95, 0.03),
    "expressionism": (1.3, 1.2, 0.0),
    "art nouveau": (0.9, 1.0, 0.04),
    "art deco": (1.05, 1.15, 0.02),
    "ukiyo-e": (0.85, 1.0, 0.03),
    "pop art": (1.45, 1.25, 0.0),
    "cubism": (0.9, 1.1, 0.02),
    "minimalism": (0.8, 0.9, 0.0),
    "baroque": (0.95, 1.3, 0.06),
    "cyberpunk": (1.35, 1.2, -0.06),
    "folk art": (1.2, 1.05, 0.03),
    "bauhaus": (1.2, 1.15, 0.0),
    "surrealism": (1.05, 1.05, -0.02),
    "retro poster": (0.95, 1.05, 0.05),
    "children's book": (1.15, 0.95, 0.02),
    "botanical illustration": (0.85, 0.95, 0.02),
}


def look_for(identity: str) -> tuple[float, float, float]:
    """Saturation, contrast and warmth grade of an identity; unknown identities get hashed values."""
    text = normalize_words(identity)
    if text in LOOKS:
        return LOOKS[text]
    r = np.random.default_rng(stable_hash(text, "identity"))
    return (float(r.uniform(0.85, 1.3)), float(r.uniform(0.9, 1.2)), float(r.uniform(-0.05, 0.05)))


# --- the whole style ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StyleSpec:
    """Everything the renderer needs from a style prompt; derived from ``StyleAttributes`` only."""

    medium: str
    pattern: str | None
    surface: str
    edges: str | None
    brushwork: str | None
    lighting: Lighting
    look: tuple[float, float, float]
    palette: Palette
    key: int  # stable hash of the whole style
    stroke_key: int  # hash of identity, medium and brushwork only: stroke direction ignores colour/light

    @property
    def angle(self) -> float:
        """Dominant stroke direction in radians, a property of the style (not of the content)."""
        return float((self.stroke_key % 3600) / 3600 * np.pi)


def _edges(edges: str | None) -> str | None:
    if edges is None or not edges.strip():
        return None
    text = normalize_words(edges)
    if any(w in text for w in ("soft", "blur", "feather", "fuzzy", "hazy", "smooth")):
        return "soft"
    if any(w in text for w in ("sharp", "crisp", "hard", "clean", "precise")):
        return "sharp"
    return ("soft", "sharp")[stable_hash(text, "edges") % 2]


@lru_cache(maxsize=4096)
def style_spec(attrs: StyleAttributes) -> StyleSpec:
    """Resolve attributes to a ``StyleSpec``; deterministic, and cached since prompts repeat."""
    key = stable_hash(repr(attrs), "style")
    medium = canonical(attrs.medium, MEDIA, "medium", MEDIUM_SYNONYMS) or MEDIA[key % len(MEDIA)]
    surface = canonical(attrs.surface, SURFACES, "surface") or SURFACES[key % len(SURFACES)]
    return StyleSpec(
        medium=medium,
        pattern=canonical(attrs.pattern, PATTERNS, "pattern"),
        surface=surface,
        edges=_edges(attrs.edges),
        brushwork=canonical(attrs.brushwork, BRUSHWORK, "brushwork"),
        lighting=lighting_for(attrs.lighting or ""),
        look=look_for(attrs.identity or ""),
        palette=make_palette(tuple(attrs.dominant_colors), tuple(attrs.accent_colors), attrs.identity),
        key=key,
        stroke_key=stable_hash(f"{attrs.identity}|{medium}|{attrs.brushwork}", "strokes"),
    )


__all__ = ["LIGHTS", "Lighting", "Palette", "StyleSpec", "color_rgb", "style_spec"]
