"""Content sentences without style: strip style words, framing ("a painting of") and colour modifiers.

Used on sidecar captions (the ``heuristic`` captioner) and on VLM content answers: a content prompt
names objects and relations only; colour belongs to the style prompt (as in ``sample_content_prompts``).
"""

from __future__ import annotations

import re

from megastyle.prompts.content_text import RELATION_ALIASES
from megastyle.prompts.lexicon import STYLE_LEAK_PHRASES, find_phrases, normalize_text
from megastyle.prompts.template import find_content_words
from megastyle.prompts.vocabulary import COLORS, RELATIONS

# Nouns that frame a picture rather than name its content: "a watercolor painting of ...".
_FRAME_NOUNS = (
    "painting|drawing|illustration|image|picture|photo|photograph|rendering|render|artwork|sketch|"
    "print|poster|art|scene|view|close up|closeup|shot|depiction|portrayal"
)
_FRAME_RE = re.compile(
    rf"^(?:(?:a|an|the)\s+)?(?P<words>(?:[\w']+\s+){{0,4}}?)(?:{_FRAME_NOUNS})\s+"
    r"(?:of|showing|depicting|featuring|with)\s+"
)
# Words after which a colour is the object itself ("an orange on a plate"), not its modifier.
_AFTER_HEAD = frozenset(
    {"and", "or", "with", "of", "in", "at", "to", "is", "are", "while", "that", "which"}
    | {w for phrase in (*RELATIONS, *RELATION_ALIASES) for w in phrase.split()}
)
_COLOR_WORDS: dict[tuple[str, ...], int] = {tuple(c.split()): len(c.split()) for c in COLORS}
_DANGLING = re.compile(
    r"\b(?:in the style of|in the|in|with|of|and|by|done in|rendered in|drawn in|painted in|a|an|the)\s*(?=[,;.]|$)"
)
# "in the style of <anything>" names a style up to the end of its clause, artists included.
_STYLE_OF = re.compile(r"\b(?:in|after)\s+the\s+style\s+of\s+[^,;.]*")
_LEADING = re.compile(r"^(?:[,;.]\s*|(?:in|with|of|and|by)\s+)+")


def _has_content_noun(text: str) -> bool:
    # find_content_words masks style phrases first, so "stained glass" or "pencil hatching" are not objects.
    return bool(find_content_words(text))


def strip_color_modifiers(text: str) -> str:
    """Drop colour names used as modifiers ("a red barn" → "a barn"); colours used as nouns stay."""
    tokens = text.split()
    out: list[str] = []
    i = 0
    while i < len(tokens):
        bare = [t.strip(",;.").lower() for t in tokens[i : i + 2]]
        width = next((n for n in (2, 1) if tuple(bare[:n]) in _COLOR_WORDS and len(bare) >= n), 0)
        if width:
            last = tokens[i + width - 1]
            following = tokens[i + width].strip(",;.").lower() if i + width < len(tokens) else ""
            # A modifier: no punctuation after it and a word follows that is not a relation or break.
            if last[-1:].isalnum() and following.isalpha() and following not in _AFTER_HEAD:
                i += width
                continue
        out.append(tokens[i])
        i += 1
    return " ".join(out)


def _fix_articles(text: str) -> str:
    text = re.sub(r"\ba (?=[aeiou])", "an ", text)
    return re.sub(r"\ban (?=[^aeiou\W])", "a ", text)


def tidy_sentence(text: str) -> str:
    """Collapse spaces, drop dangling prepositions/articles and stray punctuation, capitalise."""
    text = re.sub(r"\s+", " ", text).strip()
    for _ in range(3):  # removing one dangling word can expose another ("in the" → "in")
        text = _DANGLING.sub("", text)
        text = re.sub(r"\s*([,;])\s*(?:[,;]\s*)+", r"\1 ", text)
        text = re.sub(r"\s+([,;.])", r"\1", text)
        text = _LEADING.sub("", text).strip(" ,;.")
        text = re.sub(r"\s+", " ", text)
    text = _fix_articles(text)
    return text[:1].upper() + text[1:]


def strip_style_words(caption: str) -> str:
    """Content-only version of a free caption: framing, style phrases, style-only clauses and colours removed."""
    text = normalize_text(caption)
    # "watercolor artwork: two cups" — a label before a colon that names no object is framing.
    head, colon, rest = text.partition(":")
    if colon and rest.strip() and not _has_content_noun(head):
        text = rest.strip()
    frame = _FRAME_RE.match(text)
    if frame is not None and not _has_content_noun(frame.group("words")):
        text = text[frame.end() :]
    text = _STYLE_OF.sub(" ", text)
    # Remove every style phrase (media, lighting, identities, "painting", "palette"...).
    for match in reversed(find_phrases(text, STYLE_LEAK_PHRASES)):
        text = text[: match.start] + " " + text[match.end :]
    # Tag-style tails ("..., soft light, highly detailed") name no object: keep only clauses that do.
    clauses = [c.strip() for c in re.split(r"[,;]", text)]
    kept = [clauses[0], *(c for c in clauses[1:] if _has_content_noun(c))]
    text = ", ".join(c for c in kept if c)
    return tidy_sentence(strip_color_modifiers(tidy_sentence(text)))
