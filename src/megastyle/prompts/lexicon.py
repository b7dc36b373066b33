"""Word lists and text helpers shared by the style and content prompt parsers.

``vocabulary.py`` holds what the renderer can draw; this module holds what the parsers need
on top: content nouns, vague words, style-leak phrases, inflection and phrase matching.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from megastyle.prompts.vocabulary import (
    BRUSHWORK,
    COLORS,
    EDGES,
    IDENTITIES,
    LIGHTING,
    MEDIA,
    OBJECTS,
    PATTERNS,
    SURFACES,
)


def _wordset(text: str) -> frozenset[str]:
    # Whitespace-separated word lists read better than hundreds of quoted literals.
    return frozenset(text.split())


# Common nouns beyond OBJECTS: a style prompt naming any of them leaks content. Colour names
# that double as nouns (rose, peach, lime...) are removed below so colours stay legal.
_COMMON_NOUNS: frozenset[str] = _wordset(
    """
    person woman man girl boy child baby face head hand eye portrait figure people crowd
    building city street road town village castle church temple house room window door wall roof
    animal horse cow bear lion tiger elephant rabbit mouse fox wolf deer sheep goat pig chicken duck
    owl snake frog turtle insect bee spider monkey giraffe zebra whale dolphin shark penguin dragon
    tree plant grass bush forest flower garden field meadow river sea ocean lake beach island
    sky cloud rain snow mountain hill valley desert rock stone waterfall landscape cityscape
    car truck bus train plane airplane ship boat bicycle motorcycle rocket robot
    cup mug glass bowl plate bottle jar vase teapot spoon fork knife basket box bag
    table chair sofa bed desk shelf lamp clock mirror book pencil pen piano guitar violin drum
    fruit apple pear banana cherry grape strawberry bread cake pie cookie pizza egg tomato potato
    hat shoe glove dress shirt coat scarf umbrella ball toy doll kite balloon candle
    sunflower tulip mushroom leaf cactus food
    """
) - frozenset(COLORS)

CONTENT_NOUNS: frozenset[str] = (frozenset(OBJECTS) | _COMMON_NOUNS) - frozenset(COLORS)
# Nouns the inflection helpers know are singular, including ones that look plural ("canvas").
KNOWN_NOUNS: frozenset[str] = CONTENT_NOUNS | _wordset("canvas gas lens atlas iris bus cactus glass dress")

# Words that describe nothing a renderer could draw (MegaStyle++ bans them from style prompts).
VAGUE_WORDS: frozenset[str] = _wordset(
    """
    beautiful nice interesting various unique amazing stunning some lovely pretty good great awesome
    wonderful gorgeous fantastic incredible breathtaking captivating mesmerizing striking elegant
    cute fancy special perfect different diverse assorted several many things stuff etc somewhat
    aesthetic artistic charming delightful magnificent impressive exquisite
    """
)
VAGUE_PHRASES: tuple[str, ...] = ("kind of", "sort of", "a bit", "a lot of")

# Style words that must not appear in content prompts: media, lighting, colour schemes, identities.
_LEAK_EXTRA: tuple[str, ...] = (
    "style",
    "in the style of",
    "lighting",
    "lit",
    "sunlit",
    "moonlit",
    "backlit",
    "golden hour",
    "chiaroscuro",
    "glow",
    "glowing",
    "palette",
    "color scheme",
    "colour scheme",
    "monochrome",
    "monochromatic",
    "pastel",
    "pastels",
    "tones",
    "hues",
    "accents",
    "vibrant",
    "muted",
    "saturated",
    "desaturated",
    "painting",
    "painted",
    "oil painting",
    "watercolour",
    "sketch",
    "drawing",
    "illustration",
    "rendered",
    "brushstrokes",
    "brush strokes",
    "brushwork",
    "strokes",
    "texture",
    "textured",
)
STYLE_LEAK_PHRASES: tuple[str, ...] = tuple(dict.fromkeys((*MEDIA, *LIGHTING, *IDENTITIES, *_LEAK_EXTRA)))

# Every phrase of the style vocabulary: masked before content/vague checks, so that e.g. the
# pattern "scattered stars" or the identity "children's book" do not count as content.
STYLE_VOCABULARY_PHRASES: tuple[str, ...] = tuple(
    dict.fromkeys((*COLORS, *MEDIA, *LIGHTING, *PATTERNS, *SURFACES, *EDGES, *BRUSHWORK, *IDENTITIES))
)

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def normalize_text(text: str) -> str:
    """Lower-case, unify apostrophes, turn hyphens/underscores/slashes into spaces, collapse spaces."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[-_/]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def words(text: str) -> list[str]:
    """The lower-case word tokens of ``text`` (punctuation dropped, apostrophes kept inside words)."""
    return _WORD_RE.findall(normalize_text(text))


def word_count(text: str) -> int:
    """Number of whitespace-separated words, as the paper's word limits count them."""
    return len(text.split())


@dataclass(frozen=True)
class PhraseMatch:
    """One occurrence of a known phrase in normalised text."""

    start: int
    end: int
    phrase: str


@lru_cache(maxsize=64)
def _phrase_regex(phrases: tuple[str, ...]) -> re.Pattern[str]:
    # Longest alternatives first, so at any position the longest phrase wins ("charcoal sketch"
    # beats "charcoal"); finditer then gives leftmost-longest, non-overlapping matches.
    ordered = sorted({normalize_text(p) for p in phrases if p.strip()}, key=len, reverse=True)
    body = "|".join(re.escape(p) for p in ordered)
    return re.compile(rf"(?<![a-z0-9']){'(?:' + body + ')' if body else '(?!)'}(?![a-z0-9'])")


def find_phrases(text: str, phrases: Iterable[str]) -> list[PhraseMatch]:
    """Non-overlapping occurrences of ``phrases`` in ``text`` (normalised), leftmost-longest first."""
    normalized = normalize_text(text)
    regex = _phrase_regex(tuple(phrases))
    return [PhraseMatch(m.start(), m.end(), m.group(0)) for m in regex.finditer(normalized)]


def mask_phrases(text: str, phrases: Iterable[str]) -> str:
    """Normalised ``text`` with every occurrence of ``phrases`` replaced by a neutral separator."""
    normalized = normalize_text(text)
    return _phrase_regex(tuple(phrases)).sub(" | ", normalized)


# --- inflection -------------------------------------------------------------------------------

_IRREGULAR_PLURALS: dict[str, str] = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "goose": "geese",
    "tooth": "teeth",
    "foot": "feet",
    "ox": "oxen",
    "leaf": "leaves",
    "knife": "knives",
    "wolf": "wolves",
    "shelf": "shelves",
    "loaf": "loaves",
    "half": "halves",
    "scarf": "scarves",
    "calf": "calves",
    "thief": "thieves",
    "life": "lives",
    "wife": "wives",
    "bus": "buses",
    "cactus": "cacti",
    "tomato": "tomatoes",
    "potato": "potatoes",
    "hero": "heroes",
    "fish": "fish",
    "sheep": "sheep",
    "deer": "deer",
}
_IRREGULAR_SINGULARS: dict[str, str] = {plural: single for single, plural in _IRREGULAR_PLURALS.items()}


def pluralize(noun: str) -> str:
    """English plural of a (lower-case) noun; only the last word of a compound is inflected."""
    head, sep, last = noun.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        plural = _IRREGULAR_PLURALS[last]
    elif len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    else:
        plural = last + "s"
    return head + sep + plural


def singularize(word: str, known: Iterable[str] = KNOWN_NOUNS) -> tuple[str, bool]:
    """``(singular, was_plural)`` for one lower-case word; known nouns guide ambiguous endings."""
    known_set = known if isinstance(known, (set, frozenset)) else frozenset(known)
    if word in _IRREGULAR_SINGULARS:
        single = _IRREGULAR_SINGULARS[word]
        return single, single != word
    if word in known_set or word in _IRREGULAR_PLURALS:
        return word, False
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word, False
    # A known noun plus "s" is the most reliable reading ("houses" → house, "vases" → vase).
    if word[:-1] in known_set:
        return word[:-1], True
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y", True
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2], True
    return word[:-1], True
