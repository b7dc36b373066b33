"""Shared word lists for style and content prompts.

One source of truth for the names that prompts use, the procedural renderer draws and
the heuristic captioner measures. Unknown words are still valid everywhere: consumers
map them deterministically (see ``stable_hash``).
"""

from __future__ import annotations

import hashlib

# Colour names → sRGB. Names are what a captioner would write; the renderer draws them.
COLORS: dict[str, tuple[int, int, int]] = {
    "black": (18, 18, 20),
    "charcoal": (54, 54, 58),
    "slate gray": (112, 128, 144),
    "silver": (192, 192, 196),
    "white": (246, 246, 242),
    "ivory": (250, 244, 222),
    "cream": (240, 228, 196),
    "beige": (222, 204, 170),
    "sand": (214, 184, 136),
    "tan": (196, 154, 108),
    "ochre": (204, 142, 34),
    "mustard": (214, 178, 42),
    "gold": (232, 190, 60),
    "yellow": (246, 222, 40),
    "lemon": (250, 240, 110),
    "orange": (244, 128, 32),
    "amber": (255, 176, 0),
    "peach": (250, 190, 150),
    "coral": (246, 110, 90),
    "salmon": (236, 138, 118),
    "red": (208, 36, 36),
    "crimson": (170, 16, 48),
    "scarlet": (236, 46, 24),
    "burgundy": (110, 16, 40),
    "maroon": (118, 32, 32),
    "rust": (168, 74, 36),
    "brown": (118, 76, 44),
    "sepia": (112, 86, 58),
    "umber": (90, 62, 40),
    "pink": (244, 160, 190),
    "magenta": (214, 36, 150),
    "rose": (226, 96, 130),
    "lavender": (186, 164, 224),
    "lilac": (200, 162, 200),
    "violet": (130, 64, 190),
    "purple": (104, 40, 140),
    "plum": (122, 54, 98),
    "indigo": (60, 40, 130),
    "navy": (24, 36, 92),
    "cobalt blue": (20, 72, 178),
    "blue": (40, 96, 210),
    "sky blue": (120, 186, 236),
    "cyan": (40, 200, 222),
    "turquoise": (48, 200, 180),
    "teal": (20, 128, 128),
    "aquamarine": (112, 220, 190),
    "mint": (168, 230, 190),
    "sage green": (150, 170, 126),
    "olive": (120, 124, 40),
    "green": (40, 150, 64),
    "emerald": (16, 140, 90),
    "forest green": (30, 88, 44),
    "lime": (164, 214, 40),
    "moss green": (102, 120, 54),
}

# Media the procedural renderer implements as distinct drawing techniques.
MEDIA: tuple[str, ...] = (
    "watercolor",
    "ink wash",
    "oil impasto",
    "pencil hatching",
    "pixel art",
    "mosaic",
    "stained glass",
    "halftone print",
    "woodcut",
    "neon glow",
    "paper cut",
    "stipple",
    "flat vector",
    "crayon",
    "charcoal sketch",
    "blueprint",
)

LIGHTING: tuple[str, ...] = (
    "soft diffuse",
    "warm golden hour",
    "cool moonlit",
    "harsh midday",
    "dramatic chiaroscuro",
    "backlit rim",
    "flat even",
    "hazy atmospheric",
    "glowing neon",
    "candlelit",
)

PATTERNS: tuple[str, ...] = (
    "concentric circles",
    "diagonal stripes",
    "horizontal bands",
    "checkerboard tiles",
    "polka dots",
    "zigzag lines",
    "swirling spirals",
    "hexagonal cells",
    "scattered stars",
    "wavy ripples",
)

SURFACES: tuple[str, ...] = (
    "smooth matte",
    "glossy",
    "rough grainy",
    "canvas weave",
    "cracked aged",
    "crumpled paper",
    "speckled",
    "velvety",
)

EDGES: tuple[str, ...] = ("soft", "sharp")

BRUSHWORK: tuple[str, ...] = (
    "loose expressive strokes",
    "fine precise strokes",
    "bold thick strokes",
    "dry brush strokes",
    "dotted touches",
    "cross hatched lines",
    "smooth blended gradients",
    "short choppy dabs",
)

IDENTITIES: tuple[str, ...] = (
    "impressionism",
    "expressionism",
    "art nouveau",
    "art deco",
    "ukiyo-e",
    "pop art",
    "cubism",
    "minimalism",
    "baroque",
    "cyberpunk",
    "folk art",
    "bauhaus",
    "surrealism",
    "retro poster",
    "children's book",
    "botanical illustration",
)

# Content vocabulary: objects the renderer can draw (≥ 30) and spatial relations.
OBJECTS: tuple[str, ...] = (
    "house",
    "tree",
    "car",
    "bench",
    "cat",
    "dog",
    "bird",
    "fish",
    "flower",
    "boat",
    "mountain",
    "sun",
    "moon",
    "star",
    "cloud",
    "cup",
    "bottle",
    "chair",
    "table",
    "lamp",
    "umbrella",
    "bicycle",
    "apple",
    "pear",
    "heart",
    "key",
    "bell",
    "kite",
    "balloon",
    "clock",
    "book",
    "candle",
    "tower",
    "bridge",
    "mushroom",
    "leaf",
    "vase",
    "hat",
    "guitar",
    "butterfly",
)

RELATIONS: tuple[str, ...] = (
    "beside",
    "next to",
    "above",
    "over",
    "below",
    "under",
    "in front of",
    "behind",
    "on",
    "around",
    "between",
)

NUMBER_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "several": 4,
    "many": 6,
    "a pair of": 2,
    "a few": 3,
}


def stable_hash(text: str, salt: str = "") -> int:
    """Process-independent 64-bit hash of ``text`` (Python's ``hash`` is salted per run)."""
    digest = hashlib.blake2b(f"{salt}\x00{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def nearest_color_name(rgb: tuple[float, float, float]) -> str:
    """Name of the vocabulary colour closest to ``rgb`` in a perceptually weighted RGB distance."""
    r, g, b = rgb

    def distance(item: tuple[str, tuple[int, int, int]]) -> float:
        cr, cg, cb = item[1]
        mean_r = (r + cr) / 2
        # "redmean" weighting: cheap and much closer to perception than plain Euclidean RGB.
        return (
            (2 + mean_r / 256) * (r - cr) ** 2
            + 4 * (g - cg) ** 2
            + (2 + (255 - mean_r) / 256) * (b - cb) ** 2
        )

    return min(COLORS.items(), key=distance)[0]
