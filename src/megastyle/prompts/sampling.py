"""Seeded samplers of style attributes, style prompts and content prompts (quickstart and tests)."""

from __future__ import annotations

import random

from megastyle.prompts.attributes import StyleAttributes
from megastyle.prompts.content import ContentObject, ContentPrompt, Relation
from megastyle.prompts.content_text import render_content_prompt
from megastyle.prompts.lexicon import word_count
from megastyle.prompts.template import WORD_LIMITS, render_style_prompt
from megastyle.prompts.vocabulary import (
    BRUSHWORK,
    COLORS,
    EDGES,
    IDENTITIES,
    LIGHTING,
    MEDIA,
    OBJECTS,
    PATTERNS,
    RELATIONS,
    SURFACES,
)

# Content modifiers: size, age, shape and material only. Colour words are style information
# (the style prompt owns the palette), so sampled content prompts never carry them.
_MODIFIERS: tuple[str, ...] = (
    "small",
    "large",
    "tall",
    "tiny",
    "old",
    "round",
    "wooden",
    "ceramic",
    "metal",
    "wide",
    "narrow",
    "open",
)
_CONTENT_LENGTH = (25, 69)  # characters, the range of the released MegaStyle content prompts


def _colors(rng: random.Random, limit: int, max_items: int, exclude: set[str]) -> tuple[str, ...]:
    """1..max_items distinct colours whose names total at most ``limit`` words."""
    target = rng.randint(1, max_items)
    out: list[str] = []
    pool = sorted(set(COLORS) - exclude)  # sorted: set order must not leak into seeded draws
    rng.shuffle(pool)
    for name in pool:
        if len(out) == target:
            break
        if sum(map(word_count, out)) + word_count(name) <= limit:
            out.append(name)
    return tuple(out)


def sample_style_attributes(rng: random.Random, medium: str | None = None) -> StyleAttributes:
    """Random template-valid attributes drawn from the vocabularies; ``medium`` pins the medium."""
    dominant = _colors(rng, WORD_LIMITS["dominant_colors"], 3, set())
    accent = _colors(rng, WORD_LIMITS["accent_colors"], 2, set(dominant))
    return StyleAttributes(
        identity=rng.choice(IDENTITIES),
        dominant_colors=dominant,
        accent_colors=accent,
        lighting=rng.choice(LIGHTING),
        surface=rng.choice(SURFACES),
        medium=medium if medium is not None else rng.choice(MEDIA),
        # Optional parts are present most of the time: fuller prompts sit closer to the
        # released prompt lengths (183–310 characters).
        pattern=rng.choice(PATTERNS) if rng.random() < 0.85 else None,
        edges=rng.choice(EDGES) if rng.random() < 0.85 else None,
        brushwork=rng.choice(BRUSHWORK) if rng.random() < 0.85 else None,
    )


def sample_style_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct, strictly valid style prompts; media cycle through MEDIA so they vary widely."""
    rng = random.Random(seed)
    prompts: dict[str, None] = {}
    media: list[str] = []
    for _ in range(max(n, 1) * 50):
        if len(prompts) >= n:
            break
        if not media:
            media = rng.sample(MEDIA, k=len(MEDIA))  # a fresh shuffled round of every medium
        prompt = render_style_prompt(sample_style_attributes(rng, medium=media[-1]), strict=True)
        if prompt not in prompts:
            prompts[prompt] = None
            media.pop()
    if len(prompts) < n:
        raise ValueError(f"could only sample {len(prompts)} distinct style prompts, asked for {n}")
    return list(prompts)


def sample_content(rng: random.Random, max_objects: int = 3) -> ContentPrompt:
    """A random content prompt: 1..max_objects distinct objects, each linked to the next by a relation."""
    k = rng.randint(1, max_objects)
    objects = []
    for name in rng.sample(OBJECTS, k=k):
        count = 1 if rng.random() < 0.7 else rng.randint(2, 3)
        modifiers: tuple[str, ...] = ()
        roll = rng.random()
        if roll < 0.5:
            modifiers = (rng.choice(_MODIFIERS),)
        elif roll < 0.65:
            modifiers = tuple(rng.sample(_MODIFIERS, k=2))
        objects.append(ContentObject(name=name, count=count, modifiers=modifiers))
    relations = tuple(Relation(i, rng.choice(RELATIONS), i + 1) for i in range(k - 1))
    return ContentPrompt(objects=tuple(objects), relations=relations)


def sample_content_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct content prompts of 1–3 objects, 25–69 characters where the draws allow."""
    rng = random.Random(seed)
    prompts: dict[str, None] = {}
    low, high = _CONTENT_LENGTH
    for _ in range(max(n, 1) * 200):
        if len(prompts) >= n:
            break
        # Retry a few draws for an in-range length before accepting whatever came last.
        for _ in range(20):
            text = render_content_prompt(sample_content(rng))
            if low <= len(text) <= high:
                break
        prompts.setdefault(text, None)
    if len(prompts) < n:
        raise ValueError(f"could only sample {len(prompts)} distinct content prompts, asked for {n}")
    return list(prompts)
