"""Content prompts as text: parse to ``ContentPrompt``, render back, and check for style leaks.

A content prompt names objects (with counts and modifiers) and the spatial relations between
consecutive objects, e.g. "Two red apples beside a cup on a table".
"""

from __future__ import annotations

from megastyle.prompts.content import ContentObject, ContentPrompt, Relation
from megastyle.prompts.lexicon import (
    KNOWN_NOUNS,
    STYLE_LEAK_PHRASES,
    find_phrases,
    normalize_text,
    pluralize,
    singularize,
    words,
)
from megastyle.prompts.vocabulary import COLORS, NUMBER_WORDS, RELATIONS


class ContentPromptError(ValueError):
    """A content prompt cannot be parsed (empty text) or rendered (relation not expressible)."""


# Relation synonyms → canonical RELATIONS entries.
RELATION_ALIASES: dict[str, str] = {
    "on top of": "on",
    "atop": "on",
    "upon": "on",
    "beneath": "under",
    "underneath": "under",
    "near": "beside",
    "by": "beside",
    "alongside": "beside",
    "next to each other": "next to",
    "surrounding": "around",
    "among": "between",
    "above of": "above",
}
_RELATION_TABLE: dict[str, str] = {**{r: r for r in RELATIONS}, **RELATION_ALIASES}
_RELATION_PHRASES: list[tuple[str, ...]] = sorted(
    (tuple(p.split()) for p in _RELATION_TABLE), key=len, reverse=True
)
_NUMBER_PHRASES: list[tuple[str, ...]] = sorted(
    (tuple(p.split()) for p in NUMBER_WORDS), key=len, reverse=True
)
# Words that end a noun phrase without relating the objects ("a cat and a dog", "a bowl of fruit").
_BREAKS = frozenset({"and", "with", "of", "in", "inside", "at", "while", "plus", "or", ",", ";", "."})
# Determiners start a phrase but carry no count; "some"/"the" + plural still means several.
_DETERMINERS = frozenset(
    {"the", "this", "that", "these", "those", "its", "his", "her", "their", "my", "some"}
)
# Filler verbs/adverbs dropped from noun phrases ("a cat sitting on a mat").
_FILLER = frozenset(
    {"is", "are", "sits", "sitting", "stands", "standing", "lies", "lying", "rests", "resting", "placed"}
    | {"floating", "flying", "hanging", "there", "it", "them", "which", "very", "each", "other", "together"}
)
_COUNT_WORDS: dict[int, str] = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_MULTIWORD_COLORS: dict[tuple[str, ...], str] = {tuple(c.split()): c for c in COLORS if " " in c}


def _match(tokens: list[str], i: int, phrases: list[tuple[str, ...]]) -> tuple[str, ...] | None:
    for phrase in phrases:
        if tuple(tokens[i : i + len(phrase)]) == phrase:
            return phrase
    return None


def _merge_colors(tokens: list[str]) -> tuple[str, ...]:
    """Join adjacent tokens that form a multi-word colour ("sky", "blue" → "sky blue")."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        pair = tuple(tokens[i : i + 2])
        if pair in _MULTIWORD_COLORS:
            out.append(_MULTIWORD_COLORS[pair])
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return tuple(out)


def _build_object(segment: list[str], count: int | None) -> ContentObject | None:
    tokens = [t for t in segment if t not in _FILLER]
    if not tokens:
        return None
    # Head noun: the last known noun ("apple trees" → tree); otherwise the last word that does
    # not look like a participle, so unknown nouns ("a red zorblax") are still kept.
    known = [i for i, t in enumerate(tokens) if singularize(t)[0] in KNOWN_NOUNS]
    if known:
        head = known[-1]
    else:
        plain = [i for i, t in enumerate(tokens) if not t.endswith("ing")]
        head = plain[-1] if plain else len(tokens) - 1
    name, plural = singularize(tokens[head])
    if count is None:
        count = 2 if plural else 1
    return ContentObject(name=name, count=count, modifiers=_merge_colors(tokens[:head]))


def parse_content_prompt(text: str) -> ContentPrompt:
    """Objects (counts, plurals, modifiers, unknown nouns kept) and relations of a content prompt."""
    if not text.strip():
        raise ContentPromptError("content prompt is empty")
    # words() drops punctuation; keep commas/semicolons as breaks so "a cat, a dog" stays two objects.
    tokens: list[str] = []
    for chunk in text.replace(",", " , ").replace(";", " ; ").split():
        tokens.extend([chunk] if chunk in {",", ";"} else words(chunk))
    objects: list[ContentObject] = []
    relations: list[Relation] = []
    segment: list[str] = []
    count: int | None = None
    pending: str | None = None

    def flush() -> None:
        nonlocal segment, count, pending
        obj = _build_object(segment, count) if segment else None
        if obj is not None:
            if pending is not None and objects:
                relations.append(Relation(len(objects) - 1, pending, len(objects)))
            objects.append(obj)
            pending = None
        segment, count = [], None

    i = 0
    while i < len(tokens):
        token = tokens[i]
        if (rel := _match(tokens, i, _RELATION_PHRASES)) is not None:
            flush()
            pending = _RELATION_TABLE[" ".join(rel)] if objects else None
            i += len(rel)
        elif (num := _match(tokens, i, _NUMBER_PHRASES)) is not None or token.isdigit():
            flush()
            count = NUMBER_WORDS[" ".join(num)] if num else int(token)
            i += len(num) if num else 1
        elif token in _BREAKS:
            flush()
            pending = None
            i += 1
        elif token in _DETERMINERS:
            flush()
            i += 1
        else:
            segment.append(token)
            i += 1
    flush()
    return ContentPrompt(objects=tuple(objects), relations=tuple(relations))


def _render_object(obj: ContentObject) -> str:
    noun = obj.name if obj.count == 1 else pluralize(obj.name)
    phrase = " ".join([*obj.modifiers, noun])
    if obj.count == 1:
        article = "an" if phrase[:1] in "aeiou" else "a"
    else:
        article = _COUNT_WORDS.get(obj.count, str(obj.count))
    return f"{article} {phrase}"


def render_content_prompt(prompt: ContentPrompt) -> str:
    """Text for a content prompt, e.g. "Two red apples beside a cup"; round-trips with the parser."""
    if not prompt.objects:
        raise ContentPromptError("cannot render a content prompt without objects")
    links: dict[int, str] = {}
    for rel in prompt.relations:
        if rel.object != rel.subject + 1 or rel.subject in links:
            raise ContentPromptError(
                f"relation {rel} cannot be rendered: only one relation per consecutive object pair is expressible"
            )
        links[rel.subject] = rel.relation
    if any(obj.count < 1 for obj in prompt.objects):
        raise ContentPromptError("object counts must be at least 1")
    parts = [_render_object(prompt.objects[0])]
    for i, obj in enumerate(prompt.objects[1:], start=1):
        parts.append(links.get(i - 1, "and"))
        parts.append(_render_object(obj))
    text = " ".join(parts)
    return text[:1].upper() + text[1:]


_LEAK_SPELLING: dict[str, str] = {normalize_text(p): p for p in STYLE_LEAK_PHRASES}


def content_style_leaks(text: str) -> list[str]:
    """Style words (media, lighting, colour schemes, identities) in a content prompt, in text order."""
    found = (_LEAK_SPELLING[m.phrase] for m in find_phrases(text, STYLE_LEAK_PHRASES))
    return list(dict.fromkeys(found))
