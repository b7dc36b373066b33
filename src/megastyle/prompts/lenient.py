"""Lenient reading of arbitrary style text into ``StyleAttributes`` (never fails).

Template prompts are parsed exactly; any other text is scanned for known vocabulary phrases
(plus a few common synonyms) and every field the text leaves open is filled from
``stable_hash`` of the text, so one text always maps to one attribute set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from megastyle.prompts.attributes import StyleAttributes
from megastyle.prompts.lexicon import find_phrases, normalize_text, word_count
from megastyle.prompts.template import StylePromptError, parse_style_prompt
from megastyle.prompts.vocabulary import (
    BRUSHWORK,
    COLORS,
    EDGES,
    IDENTITIES,
    LIGHTING,
    MEDIA,
    PATTERNS,
    SURFACES,
    stable_hash,
)

# Synonyms a captioner or a person might write → canonical vocabulary entries, written as
# "canonical: alias, alias; ..." so the table stays readable.
_ALIAS_SPEC: dict[str, str] = {
    "medium": (
        "watercolor: watercolour, watercolors, aquarelle, gouache;"
        "ink wash: ink, ink painting, sumi e, pen and ink;"
        "oil impasto: oil, oils, oil painting, impasto, acrylic;"
        "pencil hatching: pencil, graphite, pencil drawing;"
        "pixel art: pixel, pixelated, 8 bit, 16 bit;"
        "mosaic: tesserae;"
        "stained glass: leaded glass;"
        "halftone print: halftone, screen print, screenprint, risograph, ben day dots;"
        "woodcut: woodblock, woodblock print, linocut, engraving;"
        "neon glow: neon;"
        "paper cut: papercut, cut paper, collage;"
        "stipple: stippling, pointillism;"
        "flat vector: vector, vector art, flat design;"
        "crayon: crayons, oil pastel, chalk;"
        "charcoal sketch: charcoal drawing;"
        "blueprint: technical drawing, cyanotype"
    ),
    "lighting": (
        "soft diffuse: soft light, diffuse, diffused;"
        "warm golden hour: golden hour, sunset;"
        "cool moonlit: moonlit, moonlight;"
        "harsh midday: midday, harsh;"
        "dramatic chiaroscuro: chiaroscuro, dramatic;"
        "backlit rim: backlit, backlight, rim light;"
        "flat even: flat lighting, even lighting;"
        "hazy atmospheric: hazy, atmospheric, misty, foggy;"
        "glowing neon: neon lighting;"
        "candlelit: candlelight, candle light, firelight"
    ),
    "pattern": (
        "concentric circles: circles, concentric;"
        "diagonal stripes: stripes, striped;"
        "horizontal bands: bands;"
        "checkerboard tiles: checkerboard, checkered;"
        "polka dots: polka dot;"
        "zigzag lines: zigzag, zigzags, chevrons;"
        "swirling spirals: spirals, swirls, swirling;"
        "hexagonal cells: hexagons, honeycomb;"
        "scattered stars: stars;"
        "wavy ripples: waves, wavy, ripples"
    ),
    "surface": (
        "smooth matte: matte;"
        "glossy: gloss, shiny, lacquered;"
        "rough grainy: grainy, rough, film grain;"
        "canvas weave: canvas, linen;"
        "cracked aged: cracked, aged, weathered, craquelure;"
        "crumpled paper: crumpled, wrinkled paper;"
        "speckled: flecked, speckles;"
        "velvety: velvet, plush"
    ),
    "brushwork": (
        "loose expressive strokes: loose strokes, expressive strokes, loose brushwork, gestural;"
        "fine precise strokes: fine strokes, precise strokes;"
        "bold thick strokes: bold strokes, thick strokes;"
        "dry brush strokes: dry brush, drybrush;"
        "dotted touches: dotted;"
        "cross hatched lines: cross hatching, crosshatching, cross hatched, crosshatched, hatching;"
        "smooth blended gradients: blended, gradients, gradient;"
        "short choppy dabs: choppy strokes, dabs"
    ),
    "identity": (
        "impressionism: impressionist; expressionism: expressionist; art nouveau: nouveau;"
        "art deco: deco; ukiyo-e: ukiyoe; cubism: cubist; minimalism: minimalist, minimal;"
        "cyberpunk: cyber punk; folk art: folk; surrealism: surrealist, surreal;"
        "retro poster: vintage poster, retro; children's book: storybook, picture book;"
        "botanical illustration: botanical"
    ),
    "color": (
        "slate gray: grey, gray; gold: golden; navy: dark blue, navy blue; sky blue: light blue;"
        "cobalt blue: cobalt, ultramarine; forest green: dark green; mint: light green;"
        "burgundy: dark red; scarlet: bright red, vermilion; aquamarine: aqua; ivory: off white;"
        "tan: khaki; rust: copper, brick red; sage green: sage; moss green: moss; olive: olive green;"
        "emerald: emerald green"
    ),
}


def _parse_alias_spec(spec: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for group in spec.split(";"):
        canonical, _, aliases = group.partition(":")
        for alias in aliases.split(","):
            table[alias.strip()] = canonical.strip()
    return table


_ALIASES: dict[str, dict[str, str]] = {field: _parse_alias_spec(spec) for field, spec in _ALIAS_SPEC.items()}

_VOCAB: dict[str, Sequence[str]] = {
    "medium": MEDIA,
    "lighting": LIGHTING,
    "pattern": PATTERNS,
    "surface": SURFACES,
    "brushwork": BRUSHWORK,
    "identity": IDENTITIES,
    "color": tuple(COLORS),
}

# normalised phrase → (field, canonical). Vocabulary entries win over aliases; earlier fields
# win ties (media before colours, so "charcoal sketch" is a medium and "charcoal" a colour).
PHRASE_TABLE: dict[str, tuple[str, str]] = {}
for _field, _entries in _VOCAB.items():
    for _entry in _entries:
        PHRASE_TABLE.setdefault(normalize_text(_entry), (_field, _entry))
for _field, _aliases in _ALIASES.items():
    for _alias, _canonical in _aliases.items():
        PHRASE_TABLE.setdefault(normalize_text(_alias), (_field, _canonical))

_EDGE_RE = re.compile(
    r"\b(soft|sharp|crisp|hard|clean|blurry|blurred|feathered|fuzzy|smooth)\s+(?:edges?|outlines?|contours?)\b"
)
_SHARP_WORDS = frozenset({"sharp", "crisp", "hard", "clean"})
_SOFT_WORDS = frozenset({"soft", "blurry", "blurred", "feathered", "fuzzy", "smooth"})
_ACCENT_RE = re.compile(r"\b(?:accents?|accented|highlights?)\b")


def _pick(options: Sequence[str], key: str, salt: str) -> str:
    return options[stable_hash(key, salt) % len(options)]


def _fit(colors: list[str], limit: int = 4, max_items: int = 3) -> list[str]:
    """Distinct colours in order while their words stay within ``limit``."""
    out: list[str] = []
    for color in colors:
        if color not in out and len(out) < max_items and sum(map(word_count, [*out, color])) <= limit:
            out.append(color)
    return out


def _hash_colors(key: str, salt: str, count: int, exclude: list[str]) -> list[str]:
    palette = [c for c in COLORS if c not in exclude]
    picks: list[str] = []
    for i in range(count * 4):
        picks = _fit([*picks, _pick(palette, key, f"{salt}{i}")])
        if len(picks) == count:
            break
    return picks


def _split_accents(text: str, colors: list[tuple[int, str]]) -> tuple[list[str], list[str]]:
    """Colours in a clause that mentions accents/highlights (after its "with") are accents."""
    dominant: list[str] = []
    accent: list[str] = []
    spans: list[tuple[int, int]] = []
    start = 0
    for clause in re.split(r"([,;.])", text):
        end = start + len(clause)
        if (marker := _ACCENT_RE.search(clause)) is not None:
            with_pos = clause.rfind(" with ", 0, marker.start())
            spans.append((start + max(with_pos, 0), end))
        start = end
    for pos, color in colors:
        (accent if any(a <= pos < b for a, b in spans) else dominant).append(color)
    return dominant, accent


def read_style_text(text: str) -> StyleAttributes:
    """Attributes for any text: exact for template prompts, vocabulary scan plus stable hash otherwise."""
    try:
        return parse_style_prompt(text)
    except StylePromptError:
        pass
    key = normalize_text(text)
    edge_match = _EDGE_RE.search(key)
    edges = None
    if edge_match:
        edges = "sharp" if edge_match.group(1) in _SHARP_WORDS else "soft"
    scan = normalize_text(_EDGE_RE.sub(" | ", key))  # normalised, so match positions index ``scan``
    found: dict[str, str] = {}
    colors: list[tuple[int, str]] = []
    for match in find_phrases(scan, PHRASE_TABLE):
        field, canonical = PHRASE_TABLE[match.phrase]
        if field == "color":
            colors.append((match.start, canonical))
        else:
            found.setdefault(field, canonical)  # first occurrence wins
    dominant, accent = _split_accents(scan, colors)
    dominant = _fit(dominant)
    accent = _fit([c for c in accent if c not in dominant])
    leftover = [c for _, c in colors if c not in dominant and c not in accent]
    if not accent:
        accent = _fit(leftover, max_items=2)
    if not dominant:
        dominant = _hash_colors(key, "dominant", 1 + stable_hash(key, "n_dominant") % 2, accent)
    if not accent:
        accent = _hash_colors(key, "accent", 1, dominant)
    has_pattern = "pattern" in found or stable_hash(key, "has_pattern") % 2 == 0
    return StyleAttributes(
        identity=found.get("identity") or _pick(IDENTITIES, key, "identity"),
        dominant_colors=tuple(dominant),
        accent_colors=tuple(accent),
        lighting=found.get("lighting") or _pick(LIGHTING, key, "lighting"),
        surface=found.get("surface") or _pick(SURFACES, key, "surface"),
        medium=found.get("medium") or _pick(MEDIA, key, "medium"),
        pattern=(found.get("pattern") or _pick(PATTERNS, key, "pattern")) if has_pattern else None,
        edges=edges or _pick(EDGES, key, "edges"),
        brushwork=found.get("brushwork") or _pick(BRUSHWORK, key, "brushwork"),
    )


def _canonical(field: str, value: str) -> str:
    vocab = _VOCAB[field]
    if value in vocab:
        return value
    for match in find_phrases(value, PHRASE_TABLE):
        if PHRASE_TABLE[match.phrase][0] == field:
            return PHRASE_TABLE[match.phrase][1]
    return _pick(vocab, normalize_text(value), field)


def canonical_style_attributes(attrs: StyleAttributes) -> StyleAttributes:
    """Map every field onto the vocabulary (synonyms first, else stable hash); None stays None."""
    dominant = _fit([_canonical("color", c) for c in attrs.dominant_colors]) or _hash_colors(
        "", "dominant", 1, []
    )
    accent = _fit([c for c in (_canonical("color", c) for c in attrs.accent_colors) if c not in dominant])
    edges = attrs.edges
    if edges is not None and edges not in EDGES:
        first = (normalize_text(edges).split() or [""])[0]
        if first in _SHARP_WORDS:
            edges = "sharp"
        elif first in _SOFT_WORDS:
            edges = "soft"
        else:
            edges = _pick(EDGES, normalize_text(edges), "edges")
    return StyleAttributes(
        identity=_canonical("identity", attrs.identity),
        dominant_colors=tuple(dominant),
        accent_colors=tuple(accent),
        lighting=_canonical("lighting", attrs.lighting),
        surface=_canonical("surface", attrs.surface),
        medium=_canonical("medium", attrs.medium),
        pattern=_canonical("pattern", attrs.pattern) if attrs.pattern else None,
        edges=edges,
        brushwork=_canonical("brushwork", attrs.brushwork) if attrs.brushwork else None,
    )
